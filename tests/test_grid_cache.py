"""The grid's shared page cache (active_sessions/page_cache.py): sharing, and never the wrong data."""

from __future__ import annotations

import threading

import pytest

from active_sessions.page_cache import PageCache, view_key
from active_sessions.view import SessionView


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def loader(value):
    calls = []

    def load():
        calls.append(1)
        return value

    return load, calls


def test_tabs_on_the_same_view_and_version_share_one_load():
    cache: PageCache[str] = PageCache()
    load, calls = loader("page")
    for _ in range(25):
        assert cache.get_or_load(1, 7, SessionView(), load) == "page"
    assert len(calls) == 1
    assert (cache.hits, cache.misses) == (24, 1)


def test_another_workspace_never_gets_the_entry():
    cache: PageCache[str] = PageCache()
    cache.put(1, 7, SessionView(), "workspace 1")
    assert cache.get(2, 7, SessionView()) is None
    load, calls = loader("workspace 2")
    assert cache.get_or_load(2, 7, SessionView(), load) == "workspace 2"
    assert calls == [1]
    assert cache.get(1, 7, SessionView()) == "workspace 1"


def test_another_version_never_gets_the_entry():
    cache: PageCache[str] = PageCache()
    cache.put(1, 7, SessionView(), "version 7")
    assert cache.get(1, 8, SessionView()) is None
    assert cache.get(1, 6, SessionView()) is None
    cache.put(1, 8, SessionView(), "version 8")
    assert cache.get(1, 7, SessionView()) == "version 7"
    assert cache.get(1, 8, SessionView()) == "version 8"


@pytest.mark.parametrize(
    "other",
    [
        SessionView(page=1),
        SessionView(page_size=25),
        SessionView(sort="member"),
        SessionView(descending=False),
        SessionView(search="ann"),
        SessionView(filters={"region": ("eu-west-1",)}),
        SessionView(filters={"region": ("eu-west-1", "us-east-1")}),
        SessionView(filters={"gateway": ("eu-west-1",)}),
    ],
)
def test_views_that_differ_in_anything_are_different_entries(other):
    cache: PageCache[str] = PageCache()
    cache.put(1, 7, SessionView(filters={"region": ("us-east-1",)}), "filtered")
    cache.put(1, 7, SessionView(), "default")
    assert cache.get(1, 7, other) is None
    assert view_key(other) != view_key(SessionView())


def test_the_same_view_spelled_differently_is_one_entry():
    first = SessionView(filters={"region": ("b", "a"), "device_type": ("laptop",)})
    second = SessionView(filters={"device_type": ("laptop",), "region": ("a", "b")})
    assert view_key(first) == view_key(second)


def test_an_entry_serves_only_while_young():
    clock = Clock()
    cache: PageCache[str] = PageCache(max_age=1.0, clock=clock)
    cache.put(1, 7, SessionView(), "old read")
    clock.now += 0.9
    assert cache.get(1, 7, SessionView()) == "old read"
    clock.now += 0.2
    assert cache.get(1, 7, SessionView()) is None
    load, calls = loader("new read")
    assert cache.get_or_load(1, 7, SessionView(), load) == "new read"
    assert calls == [1]


def test_the_size_is_bounded_least_recently_used_first():
    cache: PageCache[int] = PageCache(maxsize=3)
    for version in range(3):
        cache.put(1, version, SessionView(), version)
    assert cache.get(1, 0, SessionView()) == 0  # now the most recently used
    cache.put(1, 3, SessionView(), 3)
    assert len(cache) == 3
    assert cache.get(1, 1, SessionView()) is None
    assert [cache.get(1, version, SessionView()) for version in (0, 2, 3)] == [0, 2, 3]


def test_keys_take_plain_ints_only():
    cache: PageCache[str] = PageCache()
    with pytest.raises(TypeError):
        cache.put("1", 7, SessionView(), "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.put(1, True, SessionView(), "x")
    with pytest.raises(ValueError):
        PageCache(maxsize=0)


def test_threads_share_it_safely():
    cache: PageCache[int] = PageCache(maxsize=50)
    errors = []

    def work(offset: int) -> None:
        try:
            for n in range(2000):
                version = (n + offset) % 80
                value = cache.get_or_load(1, version, SessionView(), lambda version=version: version)
                assert value == version
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) <= 50
