"""One attempt of TCP_CHECK, SMTP_CHECK, DNS_CHECK and MISC_CHECK (keepalived `check_tcp.c`,
`check_smtp.c`, `check_dns.c`, `check_misc.c`). Each returns an `Attempt` or raises (the caller
turns exceptions into failures); the caller bounds the time of the socket probes.

- TCP_CHECK: the connection is established (then closed at once).
- SMTP_CHECK: a `220` greeting, `HELO helo_name` answered `250`, then `QUIT`.
- DNS_CHECK: a query (`type`, `name`, recursion desired) over UDP answered with the same id,
  the response bit set and RCODE 0 (NOERROR); other datagrams are ignored until the timeout.
- MISC_CHECK: `misc_path` exits 0 within `misc_timeout`; with `misc_dynamic`, 2..255 also pass
  and set the weight to status - 2. A timeout, a signal or any other status fail.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from vrrpd.check.net import Attempt, close_stream, connect_tcp, destination, make_socket
from vrrpd.check.proc import run_command
from vrrpd.config.lvsmodel import CheckerSpec, DnsParams, MiscParams, SmtpParams

SMTP_LINE_MAX = 4096
DNS_TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
                  "RRSIG": 46, "DNSKEY": 48}  # fmt: skip
DNS_CLASS_IN = 1
DNS_FLAG_RD = 0x0100
DNS_FLAG_QR = 0x8000


async def tcp_check(spec: CheckerSpec) -> Attempt:
    _, writer = await connect_tcp(spec)
    await close_stream(writer)
    return Attempt(True)


async def _smtp_reply(reader: asyncio.StreamReader) -> int:
    """An SMTP reply's code; continuation lines (`250-...`) are read through."""
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError("connection closed mid-reply")
        if len(line) < 4 or not line[:3].isdigit():
            raise ValueError(f"malformed SMTP reply {line[:40]!r}")
        if line[3:4] != b"-":
            return int(line[:3])


async def smtp_check(spec: CheckerSpec) -> Attempt:
    assert isinstance(spec.params, SmtpParams)
    reader, writer = await connect_tcp(spec, limit=SMTP_LINE_MAX)
    try:
        if (code := await _smtp_reply(reader)) != 220:
            return Attempt(False, f"bad greeting {code}")
        writer.write(f"HELO {spec.params.helo_name}\r\n".encode())
        await writer.drain()
        if (code := await _smtp_reply(reader)) != 250:
            return Attempt(False, f"HELO answered {code}")
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return Attempt(True)
    finally:
        await close_stream(writer)


def dns_query(params: DnsParams, ident: int) -> bytes:
    """RFC 1035 section 4.1: header (id, RD, one question), QNAME, QTYPE, QCLASS IN."""
    header = struct.pack("!HHHHHH", ident, DNS_FLAG_RD, 1, 0, 0, 0)
    labels = [p for p in params.name.split(".") if p]
    qname = b"".join(bytes([len(p)]) + p.encode("idna") for p in labels) + b"\0"
    return header + qname + struct.pack("!HH", DNS_TYPE_CODES[params.type], DNS_CLASS_IN)


def dns_answer(data: bytes, ident: int) -> Attempt | None:
    """The verdict for a datagram: None when it is not the answer to our query."""
    if len(data) < 12:
        return None
    got_id, flags = struct.unpack_from("!HH", data)
    if got_id != ident or not flags & DNS_FLAG_QR:
        return None
    rcode = flags & 0x000F
    return Attempt(rcode == 0, "" if rcode == 0 else f"read error occurred. (rcode = {rcode})")


async def dns_check(spec: CheckerSpec) -> Attempt:
    assert isinstance(spec.params, DnsParams)
    loop = asyncio.get_running_loop()
    ident = random.getrandbits(16)
    sock = make_socket(spec, socket.SOCK_DGRAM)
    try:
        await loop.sock_connect(sock, destination(spec))
        await loop.sock_sendall(sock, dns_query(spec.params, ident))
        while True:
            verdict = dns_answer(await loop.sock_recv(sock, 4096), ident)
            if verdict is not None:
                return verdict
    finally:
        sock.close()


async def misc_check(spec: CheckerSpec) -> Attempt:
    assert isinstance(spec.params, MiscParams)
    params = spec.params
    result = await run_command(params.command, params.timeout_s)
    if result.error is not None:
        return Attempt(False, f"cannot run: {result.error}")
    if result.timed_out:
        return Attempt(False, "timed out")
    if result.signal is not None:
        return Attempt(False, f"due to signal {result.signal}")
    rc = result.rc if result.rc is not None else 1
    ok = rc == 0 or (params.dynamic and 2 <= rc <= 255)
    return Attempt(ok, "" if ok else f"exited with status {rc}", rc)
