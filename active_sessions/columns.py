"""The grid's columns and filters: one definition shared by the UI, queries and export."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # The session column the grid sorts by.
    sort_column: str


COLUMNS: tuple[Column, ...] = (
    Column("member", "Member", "member_sort"),
    Column("device", "Device", "device_sort"),
    Column("device_type", "Device Type", "device_type"),
    Column("device_os", "Device OS", "device_os"),
    Column("connection_type", "Connection Type", "connection_type"),
    Column("app", "App Name", "app_name"),
    Column("started_at", "Start Time", "started_at"),
    Column("duration", "Duration", "started_at"),
    Column("origin", "Session Origin", "origin_sort"),
    Column("network", "Network", "network_name"),
    Column("region", "Region", "region"),
    Column("gateways", "Gateway", "entry_gateway_name"),
)
COLUMNS_BY_KEY = {column.key: column for column in COLUMNS}
COLUMN_KEYS = tuple(column.key for column in COLUMNS)
# What an export reads of each session to write any of the columns: the duration is
# counted from the start, and the member's email gets a column beside the name.
EXPORT_FIELDS = tuple(
    field
    for key in COLUMN_KEYS
    if key != "duration"
    for field in (("member", "member_email") if key == "member" else (key,))
)


@dataclass(frozen=True)
class Filter:
    key: str
    label: str


# The grid's filters, in the order they are shown; each key is also its URL parameter.
FILTERS: tuple[Filter, ...] = (
    Filter("member", "Member"),
    Filter("device_type", "Device Type"),
    Filter("device_os", "Device OS"),
    Filter("connection_type", "Connection Type"),
    Filter("app", "App Name"),
    Filter("network", "Network"),
    Filter("region", "Region"),
    Filter("gateway", "Gateway"),
)
FILTER_KEYS = tuple(item.key for item in FILTERS)

PAGE_SIZES = (25, 50, 100)
EXPORT_LIMIT = 1000
