"""A hand-made client of the app's event websocket: what anyone can send, without a browser.

Reflex runs Socket.IO (Engine.IO v4, websocket transport only) at the backend's
`/_event` path, in the `/_event` namespace. The real frontend (`.web/utils/state.js`)
connects with its tab's token in the query string (`?token=...`) and puts its
first event, `hydrate_and_load`, in the CONNECT packet's auth (`{"event": ...}`);
every later event is an `event` message `{"name", "payload", "router_data"}`,
where `name` is the handler's full name (the state's full name, a dot, the
handler's name) and `router_data` holds the page's `pathname`, `asPath` and
`query`. The backend answers with `event` messages `{"delta", "events"}`: the
changed vars by state, and the frontend-only events (`_redirect`, `_download`,
`_call_script`, toasts...). Events that a handler chains to other handlers stay
on the backend. The browser's cookies go along with the websocket's handshake;
this client sends whatever `Cookie` header it is given, or none.

The backend handles one tab's events one after the other. `sync()` uses that to
know when everything sent so far has been handled: it sends a sentinel event
that echoes a value of its own (a browser-storage var set through
`update_vars_internal`), waits for the echo, and repeats until a round brings
nothing else (an event chained by a handler runs after the sentinel sent with it).

The Engine.IO/Socket.IO framing is done here, over `websocket-client`, with one
reader thread: python-socketio's client hands each message to a thread of its
own, so it may deliver them out of order, and the order is what `sync()` needs.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import websocket

EVENT_NAMESPACE = "/_event"
FIELD_MARKER = "_rx_state_"
ROOT_STATE = "reflex___state____state"
HYDRATE_AND_LOAD = f"{ROOT_STATE}.hydrate_and_load"
UPDATE_VARS_INTERNAL = f"{ROOT_STATE}.reflex___state____update_vars_internal_state.update_vars_internal"
SYNC_PREFIX = "sync-"


@dataclass
class Update:
    """One `event` message from the server."""

    delta: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    # How many of this client's sentinels had come back before it: the
    # updates between two sentinels answer what was sent between them.
    segment: int
    # The echo of one of this client's sentinels.
    ack: bool = False

    def text(self) -> str:
        """Everything the message carries, as text: its JSON, and each download's decoded content."""
        parts = [json.dumps({"delta": self.delta, "events": self.events}, ensure_ascii=False, default=str)]
        parts += [decode_data_url(url) for url in _data_urls(self.events)]
        return "\n".join(parts)


def _data_urls(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:200]:
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _data_urls(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _data_urls(item)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def decode_data_url(url: str) -> str:
    """A `data:...;base64,` URL's content as text (an XLSX's or other ZIP's members joined)."""
    raw = base64.b64decode(url.partition(";base64,")[2])
    if raw.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    return raw.decode("utf-8-sig", "replace")


def router_data(path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the frontend sends as an event's `router_data` for a page."""
    query = dict(query or {})
    as_path = path + ("?" + urlencode(query) if query else "")
    data: dict[str, Any] = {"pathname": path, "asPath": as_path}
    if query:
        data["query"] = query
    return data


class _SocketIO:
    """A Socket.IO v5 client for one namespace over an Engine.IO v4 websocket (text frames only)."""

    def __init__(self, namespace: str, handlers: Mapping[str, Any], on_disconnect: Any):
        self.namespace = namespace
        self.handlers = handlers
        self.on_disconnect = on_disconnect
        self.connected = False
        self._ws: websocket.WebSocket | None = None
        self._reader: threading.Thread | None = None
        self._connect_answer = threading.Event()
        self._connect_error: Any = None

    def connect(self, url: str, *, cookie: str | None, origin: str, auth: Any, timeout: float) -> None:
        header = [f"Cookie: {cookie}"] if cookie is not None else []
        self._ws = websocket.create_connection(
            url, header=header, origin=origin, timeout=timeout, enable_multithread=True
        )
        opening = self._ws.recv()
        if not opening.startswith("0"):
            raise ConnectionError(f"no Engine.IO handshake: {opening[:200]!r}")
        self._ws.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="ws-client-reader", daemon=True)
        self._reader.start()
        self._send(f"40{self.namespace}," + (json.dumps(auth) if auth is not None else ""))
        if not self._connect_answer.wait(timeout):
            raise TimeoutError("the server did not answer the namespace CONNECT")
        if self._connect_error is not None:
            raise ConnectionError(f"the server refused the connection: {self._connect_error}")

    def _send(self, frame: str) -> None:
        assert self._ws is not None
        self._ws.send(frame)

    def emit(self, event: str, data: Any) -> None:
        self._send(f"42{self.namespace}," + json.dumps([event, data]))

    def _read(self) -> None:
        prefix = f"{self.namespace},"
        try:
            while True:
                frame = self._ws.recv() if self._ws is not None else ""
                if not frame:
                    break
                kind, body = frame[0], frame[1:]
                if kind == "2":  # Engine.IO ping
                    self._send("3")
                elif kind == "1":  # Engine.IO close
                    break
                elif kind == "4" and body[1:].startswith(prefix):
                    packet_type, data = body[0], body[1 + len(prefix) :]
                    if packet_type == "0":  # CONNECT answered
                        self.connected = True
                        self._connect_answer.set()
                    elif packet_type == "4":  # CONNECT_ERROR
                        self._connect_error = data
                        self._connect_answer.set()
                    elif packet_type == "1":  # DISCONNECT
                        break
                    elif packet_type == "2":  # EVENT
                        event, *args = json.loads(data)
                        handler = self.handlers.get(event)
                        if handler is not None:
                            handler(*args)
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.connected = False
            self._connect_answer.set()
            self.on_disconnect()

    def disconnect(self) -> None:
        if self._ws is None:
            return
        with contextlib.suppress(websocket.WebSocketException, OSError):
            if self.connected:
                self._send(f"41{self.namespace},")
            self._ws.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.connected = False


@dataclass
class ReflexClient:
    """One tab's websocket: connect, send any event, collect every update the server sends.

    `sentinel_var` is a browser-storage var (`<state full name>.<var>`) that
    `update_vars_internal` may set: `sync()` echoes its values through it.
    """

    backend_url: str
    origin: str
    sentinel_var: str
    cookie: str | None = None  # the whole Cookie header, or None for no cookie
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout: float = 15.0
    updates: list[Update] = field(default_factory=list)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_tokens: list[str] = field(default_factory=list)
    # Every string this client sent (in payloads and page addresses): what may come back as an echo.
    sent_strings: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._acks: list[str] = []
        self._pending: set[str] = set()
        self._sentinels = 0
        self._path = "/"
        self._query: dict[str, str] = {}
        sentinel_state, _, var = self.sentinel_var.rpartition(".")
        self._sentinel_state = sentinel_state
        self._sentinel_field = var.removesuffix(FIELD_MARKER) + FIELD_MARKER
        self._sio = _SocketIO(
            EVENT_NAMESPACE,
            {"event": self._on_update, "new_token": self._on_new_token},
            on_disconnect=self._on_disconnect,
        )

    # ------------------------------------------------------------ connection

    def connect(
        self, path: str = "/", query: Mapping[str, str] | None = None, *, hydrate: bool = True
    ) -> None:
        """Open the websocket as the frontend does: the boot event (hydrate and the page's
        on_load handlers) rides in the CONNECT packet. Returns once the server has handled it."""
        self._path, self._query = path, dict(query or {})
        auth = {"event": self._event(HYDRATE_AND_LOAD, {})} if hydrate else None
        self.sent_strings.update(_strings(auth))
        scheme = "wss" if self.backend_url.startswith("https") else "ws"
        host = self.backend_url.split("://", 1)[1].rstrip("/")
        query = urlencode({"token": self.token, "EIO": "4", "transport": "websocket"})
        self._sio.connect(
            f"{scheme}://{host}{EVENT_NAMESPACE}/?{query}",
            cookie=self.cookie,
            origin=self.origin,
            auth=auth,
            timeout=self.timeout,
        )
        self.sync()

    @property
    def connected(self) -> bool:
        return self._sio.connected

    def close(self) -> None:
        self._sio.disconnect()

    def __enter__(self) -> ReflexClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # ------------------------------------------------------------ sending

    def _event(self, name: str, payload: Any) -> dict[str, Any]:
        return {"name": name, "payload": payload, "router_data": router_data(self._path, self._query)}

    def navigate(self, path: str, query: Mapping[str, str] | None = None) -> None:
        """Later events come from this page (as after a client-side navigation)."""
        self._path, self._query = path, dict(query or {})

    def emit(self, name: str, payload: Any = None, *, raw: Any = None) -> None:
        """Send one event (not waiting for it); `raw` sends any message body instead."""
        data = raw if raw is not None else self._event(name, {} if payload is None else payload)
        self.sent_strings.update(_strings(data))
        self._sio.emit("event", data)

    def call(self, name: str, payload: Any = None) -> list[Update]:
        """Send one event and return every update the server sent for it (and what it chained)."""
        start = len(self.updates)
        self.emit(name, payload)
        self.sync()
        return [update for update in self.updates[start:] if not self._is_ack(update)]

    def load(self, path: str, query: Mapping[str, str] | None = None) -> list[Update]:
        """A page load, as the frontend makes it on a navigation: the page's on_load handlers run."""
        self.navigate(path, query)
        return self.call(f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal")

    # ------------------------------------------------------------ sentinels

    @property
    def sentinels_answered(self) -> int:
        return len(self._acks)

    def mark(self) -> str:
        """Send a sentinel without waiting for it: updates after its echo answer later events."""
        self._sentinels += 1
        value = f"{SYNC_PREFIX}{self.token[:8]}-{self._sentinels}"
        with self._changed:
            self._pending.add(value)
        self.emit(UPDATE_VARS_INTERNAL, {"vars": {self.sentinel_var: value}})
        return value

    def _wait_ack(self, value: str, idle_timeout: float) -> None:
        """Wait for a sentinel's echo while the server keeps answering (at most `idle_timeout`
        seconds without any message)."""
        seen, last_progress = len(self.updates), time.monotonic()
        with self._changed:
            while value not in self._acks:
                if len(self.updates) != seen:
                    seen, last_progress = len(self.updates), time.monotonic()
                left = last_progress + idle_timeout - time.monotonic()
                if left <= 0 or not self._sio.connected:
                    state = "went quiet" if left <= 0 else "disconnected"
                    raise TimeoutError(f"the server {state} before answering sentinel {value}")
                self._changed.wait(min(left, 0.5))

    def sync(self, *, idle_timeout: float | None = None, min_rounds: int = 2, max_rounds: int = 10) -> None:
        """Return once the server has handled everything sent so far, chained events included."""
        for round_number in range(1, max_rounds + 1):
            before = len(self.updates)
            self._wait_ack(self.mark(), idle_timeout or self.timeout)
            others = [update for update in self.updates[before:] if not self._is_ack(update)]
            if round_number >= min_rounds and not others:
                return
        raise AssertionError(f"the server kept sending updates after {max_rounds} sentinels")

    @staticmethod
    def _is_ack(update: Update) -> bool:
        return update.ack

    # ------------------------------------------------------------ receiving

    def _on_update(self, data: Any) -> None:
        delta = dict((data or {}).get("delta") or {})
        events = list((data or {}).get("events") or [])
        with self._changed:
            update = Update(delta=delta, events=events, segment=len(self._acks))
            self.updates.append(update)
            for state, changes in delta.items():
                self.state.setdefault(state, {}).update(changes)
            # A full snapshot (a hydration) repeats the last sentinel: only a new one counts.
            value = delta.get(self._sentinel_state, {}).get(self._sentinel_field)
            if value in self._pending:
                self._pending.discard(value)
                self._acks.append(value)
                update.ack = True
            self._changed.notify_all()

    def _on_disconnect(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _on_new_token(self, token: str) -> None:
        self.new_tokens.append(token)
        self.token = token

    # ------------------------------------------------------------ reading

    def var(self, state: str, name: str, default: Any = None) -> Any:
        """A var's value as the client holds it now (all deltas applied)."""
        return self.state.get(state, {}).get(name + FIELD_MARKER, default)

    def frontend_events(self, updates: Iterable[Update] | None = None) -> list[dict[str, Any]]:
        return [event for update in (self.updates if updates is None else updates) for event in update.events]

    def redirects(self, updates: Iterable[Update] | None = None) -> list[str]:
        """The paths the server sent the browser to."""
        return [
            str(event.get("payload", {}).get("path"))
            for event in self.frontend_events(updates)
            if event.get("name") == "_redirect"
        ]
