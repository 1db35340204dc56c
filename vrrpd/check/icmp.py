"""PING_CHECK (keepalived `check_ping.c`): one ICMP/ICMPv6 echo request, up when the matching
echo reply arrives within the timeout.

An unprivileged ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`) is used when
`net.ipv4.ping_group_range` allows it; the kernel then owns the identifier and matches replies.
Otherwise a raw socket (root/CAP_NET_RAW) is used and replies are matched here by source,
identifier and sequence. vrrpd never widens `ping_group_range` itself (keepalived does).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import struct

from vrrpd.check.net import Attempt, destination, make_socket
from vrrpd.config.lvsmodel import CheckerSpec
from vrrpd.proto.checksum import internet_checksum

ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129
PAYLOAD = b"vrrpd PING_CHECK" * 4
_seq = itertools.count(1)
_NO_DGRAM = (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT)


def echo_request(family: int, ident: int, seq: int) -> bytes:
    """An echo request; the IPv4 checksum is ours, the kernel fills ICMPv6's (RFC 4443 2.3)."""
    kind = ICMP_ECHO if family == 4 else ICMP6_ECHO
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if family == 6:
        return head + PAYLOAD
    return struct.pack("!BBHHH", kind, 0, internet_checksum(head + PAYLOAD), ident, seq) + PAYLOAD


def is_reply(data: bytes, family: int, raw: bool, ident: int, seq: int) -> bool:
    """Whether a received datagram is the reply to our request (raw IPv4 has the IP header)."""
    if raw and family == 4:
        if len(data) < 20:
            return False
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8:
        return False
    kind, _, _, got_id, got_seq = struct.unpack_from("!BBHHH", data)
    want = ICMP_ECHOREPLY if family == 4 else ICMP6_ECHOREPLY
    return kind == want and got_seq == seq and (not raw or got_id == ident)


def _open(spec: CheckerSpec) -> tuple[socket.socket, bool]:
    proto = socket.IPPROTO_ICMP if spec.connect_ip and spec.connect_ip.version == 4 else (
        socket.IPPROTO_ICMPV6)  # fmt: skip
    try:
        return make_socket(spec, socket.SOCK_DGRAM, proto), False
    except OSError as exc:
        if exc.errno not in _NO_DGRAM:
            raise
    return make_socket(spec, socket.SOCK_RAW, proto), True


async def ping_check(spec: CheckerSpec) -> Attempt:
    """One echo request/reply exchange; the caller bounds the time."""
    assert spec.connect_ip is not None
    loop = asyncio.get_running_loop()
    family = spec.connect_ip.version
    sock, raw = _open(spec)
    ident, seq = os.getpid() & 0xFFFF, next(_seq) & 0xFFFF
    target = destination(spec, 0)
    try:
        await loop.sock_sendto(sock, echo_request(family, ident, seq), target)
        while True:
            data, src = await loop.sock_recvfrom(sock, 2048)
            if src[0].split("%")[0] == target[0] and is_reply(data, family, raw, ident, seq):
                return Attempt(True)
    finally:
        sock.close()
