"""OpenVPN's management interface: ask a running server for its `status 3`.

The server listens on TCP (`--management 127.0.0.1 7505`) or a unix socket
(`--management /run/openvpn/mgmt.sock unix`) and takes one client at a time. On
connect it may ask for a password (`ENTER PASSWORD:`, no line end), then greets with
`>INFO:OpenVPN Management Interface Version N -- ...`. `status 3` is answered with a
TAB separated status ending in a line `END`; lines starting with `>` are notifications
that may come at any time, also between the reply's lines (the status parser skips
them). An unknown command is answered with one `ERROR: ...` line.

The client keeps its connection between reads (the server would refuse a second
client) and gives up on it at the first problem: every failure is a
`ManagementError` saying what went wrong, and the next read reconnects. Nothing
here touches the database: the reply goes to `parse_openvpn_status`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0
PASSWORD_PROMPT = b"ENTER PASSWORD:"
STATUS_COMMAND = b"status 3\n"
END = "END"
# A status reply of a big server is a few MB; a peer sending more is not OpenVPN.
MAX_REPLY_BYTES = 64 * 1024 * 1024

_TCP = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]/]+)):(?P<port>[0-9]{1,5})$")


class ManagementError(Exception):
    """The management interface could not be reached or did not answer as OpenVPN does."""


@dataclass(frozen=True)
class Target:
    """Where the management interface listens: TCP host and port, or a unix socket."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        return f"[{self.host}]:{self.port}" if self.host and ":" in self.host else f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """`host:port`, `[v6 address]:port`, or the path of a unix socket.

    A text with a `/`, or one that is not `name:port`, is a socket path
    (`./mgmt.sock` for a socket in the current folder whose name looks like host:port).
    """
    text = text.strip()
    if not text:
        raise ValueError("empty management address")
    match = None if "/" in text else _TCP.match(text)
    if match is None:
        if text.startswith("[") or re.fullmatch(r"[^/]*:[0-9]*", text):
            raise ValueError(f"bad management address {text!r}: give host:port, [v6]:port or a socket path")
        return Target(path=text)
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port} in {text!r}")
    return Target(host=match["v6"] or match["host"], port=port)


class ManagementClient:
    """One connection to a management interface; reconnects on the read after a failure."""

    def __init__(self, target: Target, *, password: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.target = target
        self.password = password
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def status(self) -> str:
        """The server's `status 3` reply, up to and including its `END` line."""
        try:
            if self._sock is None:
                self._connect()
            self._send(STATUS_COMMAND)
            return self._read_reply()
        except ManagementError:
            self._drop()
            raise
        except OSError as error:  # refused, reset, unreachable... all said plainly
            self._drop()
            raise ManagementError(f"{self.target}: {_describe(error)}") from error

    def close(self) -> None:
        """Say goodbye (best effort) and close."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"quit\n")
        self._drop()

    # --- protocol -----------------------------------------------------------------

    def _connect(self) -> None:
        if self.target.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.target.path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.target.host, self.target.port), timeout=self.timeout)
        self._sock = sock
        self._buffer = b""
        self._greeting()

    def _greeting(self) -> None:
        """Wait for `>INFO:`, answering a password prompt on the way."""
        deadline = time.monotonic() + self.timeout
        password_sent = False
        while True:
            if self._buffer.startswith(PASSWORD_PROMPT):
                self._buffer = self._buffer[len(PASSWORD_PROMPT) :]
                if password_sent:
                    raise ManagementError(f"{self.target}: the management password was refused")
                if self.password is None:
                    raise ManagementError(
                        f"{self.target}: the management interface asks for a password"
                        " (give --password or set OPENVPN_MGMT_PASSWORD)"
                    )
                self._send(self.password.encode() + b"\n")
                password_sent = True
                continue
            line = self._take_line(deadline, waiting_for="the management greeting", prompt=True)
            if line is None:
                continue  # a prompt came in; handled above
            if line.startswith(">INFO:"):
                return
            if line.startswith("ERROR:") and password_sent:
                raise ManagementError(f"{self.target}: the management password was refused ({line})")
            if line.startswith(("SUCCESS:", ">")) or not line:
                continue
            raise ManagementError(
                f"{self.target}: not an OpenVPN management interface (it said {line[:80]!r})"
            )

    def _read_reply(self) -> str:
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        size = 0
        while True:
            line = self._take_line(deadline, waiting_for="the end of the `status 3` reply", lines=lines)
            assert line is not None
            if not lines and line.startswith("ERROR:"):
                raise ManagementError(f"{self.target}: the server refused `status 3`: {line}")
            if not lines and line.startswith(">"):
                continue  # a notification before the reply
            lines.append(line)
            size += len(line) + 2
            if line == END:
                return "\r\n".join(lines) + "\r\n"
            if size > MAX_REPLY_BYTES:
                raise ManagementError(
                    f"{self.target}: reply larger than {MAX_REPLY_BYTES} bytes, not a status"
                )

    def _take_line(
        self, deadline: float, *, waiting_for: str, prompt: bool = False, lines: list[str] | None = None
    ) -> str | None:
        """The next line without its line end; None when a password prompt is waiting."""
        while b"\n" not in self._buffer:
            if prompt and self._buffer.startswith(PASSWORD_PROMPT):
                return None
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise ManagementError(f"{self.target}: line longer than {MAX_REPLY_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ManagementError(
                    f"{self.target}: no answer within {self.timeout:g} s, waiting for {waiting_for}"
                )
            assert self._sock is not None
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise ManagementError(
                    f"{self.target}: no answer within {self.timeout:g} s, waiting for {waiting_for}"
                ) from None
            if not chunk:
                got = f" after {len(lines)} line(s)" if lines else ""
                raise ManagementError(f"{self.target}: connection closed{got}, waiting for {waiting_for}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n", 1)
        return raw.removesuffix(b"\r").decode("utf-8", errors="replace")

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        self._sock.sendall(data)

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buffer = b""


def read_status(target: Target, *, password: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Connect, read one `status 3` reply, and disconnect."""
    with ManagementClient(target, password=password, timeout=timeout) as client:
        return client.status()


class Backoff:
    """Waits between failed attempts: `first`, doubled each failure up to `maximum`."""

    def __init__(self, first: float, maximum: float = 60.0):
        self.first = max(first, 0.0)
        self.maximum = max(maximum, self.first)
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next attempt."""
        self.failures += 1
        return min(self.first * 2 ** (self.failures - 1), self.maximum)

    def succeeded(self) -> None:
        self.failures = 0


def _describe(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is OpenVPN running with --management here?)"
    if isinstance(error, FileNotFoundError):
        return "no such socket (is OpenVPN running with --management ... unix?)"
    if isinstance(error, TimeoutError):
        return "timed out connecting"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    return error.strerror or str(error)
