"""Grid pages shared by the tabs of one backend process (plain Python: it builds no SQL).

Every open grid re-reads its page whenever the workspace's change counter moves.
Tabs that show the same view see the same page at the same version, so the first
of them to ask reads it and the others get that result: the work grows with the
distinct views open, not with the tabs.

An entry is keyed by (workspace id, change version, view), so it is only ever
served for exactly the workspace and the version it was read at: never another
workspace's data, never data older than the version the asking tab has read
(a page read right after the version may already hold newer changes; that is
as fresh as a read of its own would be). An entry is also served only while it
is younger than `max_age`, so a grid still reads the database every so often when
nothing changes. The cache holds at most `maxsize` entries, the least recently used
going first. Served pages are shared: callers must not change them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from active_sessions.view import SessionView

T = TypeVar("T")

CacheKey = tuple[int, int, Hashable]


def view_key(view: SessionView) -> tuple[tuple[str, str], ...]:
    """Everything that makes a view's page: its filters, search, sort, page and page size."""
    params = view.to_query_params()
    # Spelled out, so that defaults left out of the URL cannot make two views one key.
    params.update(
        sort=f"{'-' if view.descending else ''}{view.sort}", page=str(view.page), size=str(view.page_size)
    )
    return tuple(sorted(params.items()))


class PageCache(Generic[T]):
    """A bounded, thread-safe LRU of results by (workspace id, change version, view)."""

    def __init__(self, maxsize: int = 256, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(workspace_id: int, version: int, view: SessionView) -> CacheKey:
        if isinstance(workspace_id, bool) or not isinstance(workspace_id, int):
            raise TypeError("workspace_id must be an int")
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError("version must be an int")
        return (workspace_id, version, view_key(view))

    def get(self, workspace_id: int, version: int, view: SessionView) -> T | None:
        key = self.key(workspace_id, version, view)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            if self._clock() - stored_at > self.max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, workspace_id: int, version: int, view: SessionView, value: T) -> None:
        key = self.key(workspace_id, version, view)
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def get_or_load(self, workspace_id: int, version: int, view: SessionView, load: Callable[[], T]) -> T:
        """The cached result for this key, or `load()`'s (then cached). `load` runs unlocked."""
        value = self.get(workspace_id, version, view)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = load()
        self.put(workspace_id, version, view, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
