from active_sessions.cli import main

raise SystemExit(main())
