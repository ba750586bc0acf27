import os

import reflex as rx

from active_sessions.config import PROJECT_ROOT, data_dir, database_url

FRONTEND_URL = os.environ.get("ACTIVE_SESSIONS_URL", "http://localhost:3000")
# With REDIS_URL, Reflex keeps client states in Redis and runs several backend workers
# (`make run-prod`); without it, one worker keeps them locally (`make run`).
REDIS_URL = os.environ.get("REDIS_URL") or None

# The development server restarts the backend when a file under the project changes;
# SQLite's -wal and -shm files change with every write, so without this it would
# restart on every report of the simulator. (Reflex ignores *.db, not its companions.)
_WRITTEN_AT_RUN_TIME = [data_dir(), PROJECT_ROOT / "bench"]
for _folder in _WRITTEN_AT_RUN_TIME:
    _folder.mkdir(parents=True, exist_ok=True)
os.environ.setdefault(
    "REFLEX_HOT_RELOAD_EXCLUDE_PATHS", ":".join(str(folder) for folder in _WRITTEN_AT_RUN_TIME)
)

# Without Redis, client states are kept in memory and written to disk (to outlive a
# restart) at most this long after they change. Reflex's default of 2 s writes every open
# console's state every 2 s, and each round of writes lists the whole folder: about a
# tenth of a core with 50 consoles open (bench/ws_load.py). An operator's own setting,
# under either of Reflex's names, wins.
if "REFLEX_STATE_MANAGER_DISK_DEBOUNCE_SECONDS" not in os.environ:
    os.environ.setdefault("REFLEX_STATE_MANAGER_DISK_DEBOUNCE", "10s")

config = rx.Config(
    app_name="active_sessions",
    db_url=database_url(),
    redis_url=REDIS_URL,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    cors_allowed_origins=[FRONTEND_URL, FRONTEND_URL.replace("localhost", "127.0.0.1")],
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium")),
    ],
)
