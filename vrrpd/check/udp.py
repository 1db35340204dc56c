"""UDP_CHECK (keepalived `check_udp.c`, man keepalived.conf "UDP healthchecker").

One datagram to the checker's destination: `payload` (random bytes without it) from a connected
UDP socket, so that an ICMP error for it (port, host or network unreachable) surfaces on the
socket (`ConnectionRefusedError` for a closed port). Then, within `connect_timeout`:
- without `require_reply`: an ICMP error fails the check; silence, or any reply, passes;
- with `require_reply`: a reply must come, its length within `min_reply_length` ..
  `max_reply_length` and, with a HEX_STR, its bytes equal to it over the shorter of the two
  (a nibble written `x` matches anything). The first reply decides.
As man5 notes, a host unreachable needs ARP to time out, so connect_timeout should allow for it.
"""

from __future__ import annotations

import asyncio
import os
import socket

from vrrpd.check.net import Attempt, destination, make_socket
from vrrpd.config.lvsmodel import CheckerSpec, UdpParams

RANDOM_PAYLOAD_BYTES = 16  # man5 says only "a random payload"; any length does
RECV_BYTES = 65536  # the biggest datagram, so a reply's true length is seen


def payload_bytes(params: UdpParams) -> bytes:
    """The datagram to send: `payload`, or random bytes."""
    if params.payload is None:
        return os.urandom(RANDOM_PAYLOAD_BYTES)
    return bytes.fromhex(params.payload)


def _nibbles(pattern: str) -> list[tuple[int, int]]:
    """(value, mask) per nibble of a normalised `require_reply` string; `x` masks it out."""
    return [(0, 0) if c == "x" else (int(c, 16), 0xF) for c in pattern]


def reply_verdict(params: UdpParams, data: bytes) -> Attempt:
    """Whether a reply satisfies `require_reply` and the reply lengths."""
    lo, hi = params.min_reply_length, params.max_reply_length
    if not lo <= len(data) <= hi:
        return Attempt(False, f"reply of {len(data)} bytes, not {lo}..{hi}")
    if params.reply:
        want = _nibbles(params.reply)
        got = [n for byte in data for n in (byte >> 4, byte & 0xF)]
        for i, (have, (value, mask)) in enumerate(zip(got, want, strict=False)):
            if have & mask != value:
                return Attempt(False, f"reply differs from require_reply at byte {i // 2}")
    return Attempt(True)


async def udp_check(spec: CheckerSpec, timeout_s: float) -> Attempt:
    """One UDP_CHECK attempt, bounded by `timeout_s` (whose expiry may be the success)."""
    assert isinstance(spec.params, UdpParams)
    params = spec.params
    loop = asyncio.get_running_loop()
    sock = make_socket(spec, socket.SOCK_DGRAM)
    try:
        async with asyncio.timeout(timeout_s):
            await loop.sock_connect(sock, destination(spec))
            await loop.sock_sendall(sock, payload_bytes(params))
        try:
            async with asyncio.timeout(timeout_s):
                data = await loop.sock_recv(sock, RECV_BYTES)
        except TimeoutError:
            if params.require_reply:
                return Attempt(False, "no reply (timeout)")
            return Attempt(True, "no ICMP error within connect_timeout")
        except ConnectionRefusedError:
            return Attempt(False, "ICMP port unreachable")
        return reply_verdict(params, data) if params.require_reply else Attempt(True)
    finally:
        sock.close()
