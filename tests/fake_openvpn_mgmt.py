"""A small OpenVPN management interface for tests, over TCP or a unix socket.

It speaks what the collector needs of the real one (OpenVPN's `manage.c`): an optional
`ENTER PASSWORD:` prompt (no line end; `SUCCESS: password is correct` or `ERROR: bad
password` and the prompt again, three tries), the `>INFO:` greeting, `status 3`
answered with `reply`, `quit`, and `ERROR: unknown command` for anything else.

Its behaviour can be changed between reads: `mode` is one of (and `modes`, a queue of
them, is used up first, one per `status 3`)

- `"reply"`: send `reply` as it is;
- `"cut"`: send the first `cut_after` lines of `reply`, then close the connection;
- `"garbage"`: send bytes that are no status, then `END`;
- `"silent"`: send nothing (the client must time out);
- `"error"`: answer `ERROR: ...` as OpenVPN does for a command it refuses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from pathlib import Path

GREETING = b">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"
GARBAGE = b"\x00\x01\xff\xfeHTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nEND\r\n"
PASSWORD_TRIES = 3


class FakeManagementServer:
    def __init__(
        self,
        reply: bytes | str,
        *,
        password: str | None = None,
        unix: bool = False,
        notification: bytes | None = None,
    ):
        self.reply = reply.encode() if isinstance(reply, str) else reply
        self.password = password
        self.mode = "reply"
        self.modes: list[str] = []
        self.cut_after = 3
        # Sent before each reply (and after its second line), as a live server would.
        self.notification = notification
        self.commands: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._tmpdir: str | None = None
        handler = _handler_for(self)
        if unix:
            # Socket paths are short (108 bytes): not under pytest's long tmp_path.
            self._tmpdir = tempfile.mkdtemp(prefix="ovmgmt")
            path = os.path.join(self._tmpdir, "mgmt.sock")
            self._server: socketserver.BaseServer = _UnixServer(path, handler)
            self.address = path
        else:
            self._server = _TCPServer(("127.0.0.1", 0), handler)
            host, port = self._server.server_address[:2]
            self.address = f"{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    def __enter__(self) -> FakeManagementServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _record(self, command: str) -> None:
        with self._lock:
            self.commands.append(command)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    # --- one client ---------------------------------------------------------------

    def serve(self, conn: socket.socket) -> None:
        self._connected()
        reader = conn.makefile("rb")
        if self.password is not None:
            for _ in range(PASSWORD_TRIES):
                conn.sendall(b"ENTER PASSWORD:")
                given = reader.readline()
                if not given:
                    return
                if given.rstrip(b"\r\n").decode(errors="replace") == self.password:
                    conn.sendall(b"SUCCESS: password is correct\r\n")
                    break
                conn.sendall(b"ERROR: bad password\r\n")
            else:
                return
        conn.sendall(GREETING)
        for raw in reader:
            command = raw.rstrip(b"\r\n").decode(errors="replace")
            self._record(command)
            if command == "quit":
                return
            if command != "status 3":
                conn.sendall(b"ERROR: unknown command, enter 'help' for more options\r\n")
                continue
            if not self._answer_status(conn):
                return

    def _next_mode(self) -> str:
        with self._lock:
            return self.modes.pop(0) if self.modes else self.mode

    def _answer_status(self, conn: socket.socket) -> bool:
        """Send the `status 3` answer; False when the connection is to be cut."""
        mode = self._next_mode()
        if self.notification:
            conn.sendall(self.notification)
        if mode == "silent":
            return True
        if mode == "error":
            conn.sendall(b"ERROR: status command failed\r\n")
            return True
        if mode == "garbage":
            conn.sendall(GARBAGE)
            return True
        lines = self.reply.splitlines(keepends=True)
        if mode == "cut":
            conn.sendall(b"".join(lines[: self.cut_after]))
            return False
        if self.notification and len(lines) > 2:
            lines.insert(2, self.notification)
        conn.sendall(b"".join(lines))
        return True


def _handler_for(server: FakeManagementServer) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):  # the client went away
                server.serve(self.request)

    return Handler


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def free_tcp_address() -> str:
    """A local TCP address where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    return f"{host}:{port}"


def missing_socket_path() -> str:
    return str(Path(tempfile.gettempdir()) / f"ovmgmt-missing-{os.getpid()}.sock")
