"""Where sessions come from: gateways' outputs and the demo simulator.

Each source turns its input into `Snapshot`s (who is connected to a gateway
now); `active_sessions.reconcile` turns those into session starts and ends.
Nothing here touches the database.
"""
