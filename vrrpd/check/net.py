"""Sockets for the checkers, with keepalived's connection options (man keepalived.conf
"CHECKER_TYPE"): `connect_ip`/`connect_port`, `bindto`/`bind_port`, `bind_if` (SO_BINDTODEVICE,
needed for an IPv6 link-local address) and `fwmark` (SO_MARK). Every socket is non-blocking and
close-on-exec; connecting goes through the event loop, never blocking it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from vrrpd.config.lvsmodel import CheckerSpec

SO_MARK = getattr(socket, "SO_MARK", 36)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one check attempt: `ok`, a `detail` for the log, a MISC exit status."""

    ok: bool
    detail: str = ""
    rc: int | None = None


def destination(spec: CheckerSpec, port: int | None = None) -> tuple[Any, ...]:
    """The socket address to reach; a link-local IPv6 target gets `bind_if`'s scope."""
    assert spec.connect_ip is not None  # only MISC_CHECK has none, and it opens no socket
    port = spec.connect_port if port is None else port
    if spec.connect_ip.version == 4:
        return (str(spec.connect_ip), port or 0)
    scope = socket.if_nametoindex(spec.bind_if) if spec.bind_if else 0
    return (str(spec.connect_ip), port or 0, 0, scope)


def make_socket(spec: CheckerSpec, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket of the checker's family with its bind options applied."""
    assert spec.connect_ip is not None
    family = socket.AF_INET6 if spec.connect_ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        if spec.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, spec.fwmark)
        if spec.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, spec.bind_if.encode())
        if spec.bindto is not None or spec.bind_port:
            host = str(spec.bindto) if spec.bindto is not None else ""
            sock.bind((host, spec.bind_port or 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_tcp(
    spec: CheckerSpec,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    limit: int = 2**16,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (or TLS) stream to the checker's destination; the caller bounds the time."""
    loop = asyncio.get_running_loop()
    sock = make_socket(spec, socket.SOCK_STREAM)
    try:
        await loop.sock_connect(sock, destination(spec))
        if tls is None:
            return await asyncio.open_connection(sock=sock, limit=limit)
        return await asyncio.open_connection(
            sock=sock, limit=limit, ssl=tls, server_hostname=server_hostname or ""
        )
    except BaseException:
        sock.close()
        raise


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on a peer that never answers (abort after a short grace)."""
    writer.close()
    try:
        async with asyncio.timeout(0.5):  # not wait_for: in 3.11 it may swallow a cancellation
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()


def failure(exc: BaseException) -> Attempt:
    """An exception from a probe as a failed attempt with a readable reason."""
    if isinstance(exc, TimeoutError):
        return Attempt(False, "timeout")
    if isinstance(exc, ConnectionRefusedError):
        return Attempt(False, "connection refused")
    if isinstance(exc, OSError) and exc.strerror:
        return Attempt(False, exc.strerror.lower())
    return Attempt(False, str(exc) or type(exc).__name__)


def raise_if_cancelled() -> None:
    """Python 3.11's `asyncio.wait_for` can return a result instead of raising when the task is
    cancelled just as the awaited thing completes (fixed in 3.12); a checker that went on would
    keep a service's stop waiting for ever (seen in the VM: a TCP check logged its success
    after `Stopping`, and the daemon never exited). A pending cancellation is honoured here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
