"""A deliberately naive HTTP/1.1 client over a raw socket.

http.client and WebTest refuse to send most malformed requests, and WebTest
never reaches a real server; these helpers send exactly the bytes given, to
a live waitress, and parse whatever comes back.
"""
from __future__ import annotations

import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")
    to_head: bool = False  # the answer to a HEAD request: no body whatever its headers say

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request_bytes(
    method: str,
    target: str | bytes,
    headers: Iterable[tuple[str, str | bytes]] = (),
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    """The head of a request; ``target`` and header values are sent as they are
    (str as latin-1), so they may hold anything."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode("latin-1") + b" " + target + b" " + version.encode()]
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(data: bytes, size: int = 64 * 1024) -> Iterable[bytes]:
    """``data`` in the chunked transfer coding."""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def exchange(
    port: int,
    head: bytes,
    body: bytes | Iterable[bytes] = b"",
    *,
    half_close: bool = False,
    head_request: bool = False,
    timeout: float = 60.0,
) -> Reply | None:
    """Send ``head`` and ``body`` on a new connection and read until the
    server closes it (send ``Connection: close``).  Sending stops as soon as
    the server answers (an early 413 or 400).  ``half_close`` shuts the
    sending side once everything is sent, for requests that promise more
    body than they carry.  None: the server closed without answering."""
    data = converse(port, head, body, half_close=half_close, timeout=timeout)
    if not data:
        return None
    return parse_reply(data, head_request=head_request)


def replies(
    port: int, head: bytes, body: bytes | Iterable[bytes] = b"", *, wait_for_continue: bool = False,
    timeout: float = 30.0,
) -> list[Reply]:
    """Every response (interim ``100 Continue`` ones too) the server sends on
    one connection to ``head`` and ``body``, read until it closes it; see
    :func:`converse`."""
    return parse_replies(converse(port, head, body, wait_for_continue=wait_for_continue, timeout=timeout))


def converse(
    port: int,
    head: bytes,
    body: bytes | Iterable[bytes] = b"",
    *,
    half_close: bool = False,
    wait_for_continue: bool = False,
    timeout: float = 60.0,
) -> bytes:
    """The bytes the server sends on one connection, until it closes it, to
    ``head`` then ``body`` (sending stops as soon as the server answers).
    ``wait_for_continue``: the body goes only after the server's first answer,
    and only when that answer is ``100 Continue``, as a client that sent
    ``Expect: 100-continue`` and waits does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = bytearray()
    try:
        pieces = [head] + ([body] if isinstance(body, (bytes, bytearray)) else list(body))
        if wait_for_continue:
            sock.sendall(head)
            _read_head(sock, data, timeout)
            pieces = pieces[1:] if data.startswith((b"HTTP/1.1 100 ", b"HTTP/1.0 100 ")) else []
        for piece in pieces:
            if not piece:
                continue
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while True:
            try:
                piece = sock.recv(256 * 1024)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"no complete answer within {timeout}s; got {bytes(data[:300])!r}") from None
            if not piece:
                break
            data += piece
    finally:
        sock.close()
    return bytes(data)


def _read_head(sock: socket.socket, data: bytearray, timeout: float) -> None:
    """Read into ``data`` until it holds the head of a response (or the server closes)."""
    while b"\r\n\r\n" not in data:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return
        except socket.timeout:
            raise AssertionError(f"no answer within {timeout}s; got {bytes(data[:300])!r}") from None
        if not piece:
            return
        data += piece


def parse_reply(data: bytes, *, head_request: bool = False) -> Reply:
    """The first response in ``data``."""
    return _parse_one(data, head_request)[0]


def parse_replies(data: bytes) -> list[Reply]:
    """Every response in ``data``, in order (none to a HEAD request)."""
    found = []
    while data:
        reply, data = _parse_one(data, False)
        found.append(reply)
    return found


def _parse_one(data: bytes, head_request: bool) -> tuple[Reply, bytes]:
    """The first response in ``data`` and what follows it."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no end of headers in {data[:300]!r}"
    lines = head.split(b"\r\n")
    version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
    assert version.startswith("HTTP/1."), lines[0]
    headers = []
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        assert colon, f"a header line without a colon: {line!r}"
        headers.append((name, value.strip()))
    reply = Reply(int(status), reason, headers, b"", head, head_request)
    if head_request or reply.status in (204, 304) or 100 <= reply.status < 200:
        return reply, rest
    if (reply.header("Transfer-Encoding") or "").lower() == "chunked":
        reply.body, rest = _dechunk(rest)
    elif reply.header("Content-Length") is not None:
        length = int(reply.header("Content-Length"))
        assert len(rest) >= length, f"body cut short: {len(rest)} of {length} bytes"
        reply.body, rest = rest[:length], rest[length:]
    else:
        reply.body, rest = rest, b""
    return reply, rest


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    """A chunked body's bytes and what follows its end."""
    out = bytearray()
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            _, _, rest = data.partition(b"\r\n")  # no trailers are sent
            return bytes(out), rest
        out += data[:size]
        data = data[size + 2 :]
