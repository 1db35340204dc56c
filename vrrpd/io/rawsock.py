"""Raw IPPROTO_VRRP (112) sockets: send adverts and hand received ones up as `Datagram`s.

RFC 3768 / RFC 5798 section 5.1: adverts go to 224.0.0.18 / ff02::12 (or each unicast peer) with
TTL / hop limit 255; keepalived also sets TOS / traffic class 0xC0 (`vrrp.c`
`open_vrrp_send_socket`). One socket per (interface, family) is shared by every instance on
that interface, as keepalived does; the core sorts datagrams to instances by VRID.

IPv4: the kernel builds the IP header; the source and TTL are chosen per packet with `IP_PKTINFO`
and `IP_TTL` control messages. Received IPv4 packets still carry their IP header, which gives the
TTL and destination. IPv6: the kernel computes and verifies the checksum (`IPV6_CHECKSUM` 6) and
reports hop limit and destination with `IPV6_RECVHOPLIMIT` / `IPV6_RECVPKTINFO`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable, Hashable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, TypeVar

import structlog

from vrrpd.io.errors import IoError
from vrrpd.proto.advert import Datagram, IPAddress
from vrrpd.proto.constants import IPPROTO_VRRP, VRRP_GROUP4, VRRP_GROUP6, VRRP_TOS, VRRP_TTL

log = structlog.get_logger("vrrpd.io.rawsock")
K = TypeVar("K", bound=Hashable)
A = TypeVar("A", bound=IPv4Address | IPv6Address)

# Linux values that Python's socket module does not export on every version.
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)
IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
IP_MTU_DISCOVER: int = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = 0  # keepalived's adverts leave DF clear
V6_CHECKSUM_OFFSET = 6  # RFC 5798 section 5.2.8: the checksum field is at byte 6
RECV_BUFSIZE = 65535
SEND_CACHE_MAX = 1024
MAX_READS_PER_WAKEUP = 64  # bound the work done per reader callback
_CMSG_SPACE = socket.CMSG_SPACE(32) * 2 + socket.CMSG_SPACE(16)  # + SCM_TIMESTAMPNS
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: struct timespec with 64-bit fields on x86_64


def if_index(interface: str) -> int:
    """The ifindex of `interface` in the current network namespace, or `IoError` (ENODEV)."""
    try:
        return socket.if_nametoindex(interface)
    except OSError as exc:
        raise IoError("no such interface", interface, exc.errno or errno.ENODEV) from exc


class RawSocket:
    """One raw VRRP socket bound to one interface and family (4 or 6).

    `groups` are the multicast groups to join (empty for a unicast-only instance).
    """

    def __init__(
        self, interface: str, family: int, groups: tuple[IPAddress, ...] | None = None
    ) -> None:
        self.interface = interface
        self.family = family
        self.ifindex = if_index(interface)
        self.groups: set[IPAddress] = set()
        self._how: dict[tuple[object, ...], tuple[Any, int, tuple[object, ...]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        try:
            self.sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise IoError.from_os("cannot open raw VRRP socket", interface, exc) from exc
        try:
            self.sock.setblocking(False)
            self._configure()
            default = (VRRP_GROUP4,) if family == 4 else (VRRP_GROUP6,)
            for group in default if groups is None else groups:
                self.join(group)
        except OSError as exc:
            self.sock.close()
            raise IoError.from_os("cannot configure raw VRRP socket", interface, exc) from exc

    def _configure(self) -> None:
        s = self.sock
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.family == 4:
            ip = socket.IPPROTO_IP
            s.setsockopt(ip, socket.IP_TOS, VRRP_TOS)
            s.setsockopt(ip, socket.IP_TTL, VRRP_TTL)
            s.setsockopt(ip, socket.IP_MULTICAST_TTL, VRRP_TTL)
            s.setsockopt(ip, socket.IP_MULTICAST_LOOP, 0)
            s.setsockopt(ip, IP_MULTICAST_ALL, 0)
            s.setsockopt(ip, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
            mreqn = struct.pack("4s4si", b"\0" * 4, b"\0" * 4, self.ifindex)
            s.setsockopt(ip, socket.IP_MULTICAST_IF, mreqn)
        else:
            ip6 = socket.IPPROTO_IPV6
            s.setsockopt(ip6, socket.IPV6_CHECKSUM, V6_CHECKSUM_OFFSET)
            s.setsockopt(ip6, socket.IPV6_TCLASS, VRRP_TOS)
            s.setsockopt(ip6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            s.setsockopt(ip6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            s.setsockopt(ip6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(ip6, IPV6_MULTICAST_ALL, 0)
            s.setsockopt(ip6, socket.IPV6_MULTICAST_IF, self.ifindex)
            s.setsockopt(ip6, socket.IPV6_RECVPKTINFO, 1)
            s.setsockopt(ip6, socket.IPV6_RECVHOPLIMIT, 1)

    def join(self, group: IPAddress) -> None:
        """Join a multicast group on our interface (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP)."""
        if group in self.groups:
            return
        try:
            if self.family == 4:
                mreqn = struct.pack("4s4si", group.packed, b"\0" * 4, self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                mreq = struct.pack("16sI", group.packed, self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        except OSError as exc:
            raise IoError.from_os(f"cannot join {group}", self.interface, exc) from exc
        self.groups.add(group)

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- sending ---------------------------------------------------------------------------

    def send(self, payload: bytes, src: IPAddress | None, dst: IPAddress, ttl: int) -> None:
        """Send one VRRP message from `src` (None: the kernel's choice) to `dst` with TTL `ttl`.

        `payload` is what `vrrpd.proto.packet.encode(advert, src, dst, ...)` returned for this
        `dst`. Multicast goes out with MSG_DONTROUTE like keepalived's.
        """
        key = (src, dst, ttl)
        how = self._how.get(key)
        if how is None:
            if len(self._how) >= SEND_CACHE_MAX:
                self._how.clear()
            how = self._how[key] = self._sendmsg_args(src, dst, ttl)
        try:
            self.sock.sendmsg([payload], *how)
        except OSError as exc:
            raise IoError.from_os(f"cannot send advert to {dst}", self.interface, exc) from exc

    def _sendmsg_args(
        self, src: IPAddress | None, dst: IPAddress, ttl: int
    ) -> tuple[list[tuple[int, int, bytes]], int, tuple[object, ...]]:
        """(ancillary data, flags, address) for `sendmsg`, built once per (src, dst, ttl):
        formatting addresses and packing structs per advert cost more than the send."""
        flags = socket.MSG_DONTROUTE if dst.is_multicast else 0
        if self.family == 4:
            pktinfo = struct.pack("i4s4s", self.ifindex, _packed(src, 4), b"\0" * 4)
            cmsg = [
                (socket.IPPROTO_IP, IP_PKTINFO, pktinfo),
                (socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", ttl)),
            ]
            return cmsg, flags, (str(dst), 0)
        pktinfo = struct.pack("16sI", _packed(src, 16), self.ifindex)
        cmsg = [
            (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("i", ttl)),
        ]
        return cmsg, flags, (str(dst), 0, 0, self.ifindex)

    # -- receiving -------------------------------------------------------------------------

    def recv_batch(self, limit: int = MAX_READS_PER_WAKEUP) -> list[Datagram]:
        """Read what is queued, up to `limit` datagrams, without blocking; malformed ones are
        skipped (the engine never sees a packet it cannot date or check the TTL of)."""
        out: list[Datagram] = []
        recvmsg = self.sock.recvmsg
        parse = self._datagram4 if self.family == 4 else self._datagram6
        for _ in range(limit):
            try:
                data, ancdata, _flags, addr = recvmsg(RECV_BUFSIZE, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                error = IoError.from_os("cannot receive advert", self.interface, exc)
                log.warning("recv failed", interface=self.interface, error=str(error))
                break
            dgram = parse(data, ancdata, addr)
            if dgram is not None:
                out.append(dgram)
        return out

    def _datagram4(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], _addr: object
    ) -> Datagram | None:
        """IPv4: TTL, source and destination from the IP header the kernel leaves on; the
        interface is the one the socket is bound to (SO_BINDTODEVICE), so no IP_PKTINFO."""
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        end = total if ihl <= total <= len(data) else len(data)
        rx_at = 0.0
        for level, kind, value in ancdata:
            if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                rx_at = _timespec(value)
        src, dst = _addr4(data[12:16]), _addr4(data[16:20])
        return Datagram(data[ihl:end], src, dst, self.ifindex, data[8], rx_at)

    def _datagram6(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: tuple[str, ...]
    ) -> Datagram | None:
        dst: IPAddress | None = None
        ifindex, hops, rx_at = self.ifindex, -1, 0.0
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                rx_at = _timespec(value)
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_PKTINFO and len(value) >= 20:
                raw, ifindex = struct.unpack_from("16sI", value)
                dst = _addr6(raw)
            elif kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                hops = struct.unpack_from("i", value)[0]
        if dst is None or hops < 0:
            return None  # the kernel always sends both; without them we cannot check TTL
        src = _addr6_text(str(addr[0]))
        return Datagram(bytes(data), src, dst, ifindex, hops, rx_at)

    def start(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[list[Datagram]], None]
    ) -> None:
        """Call `callback(datagrams)` from the loop with what each wake-up read: one hand-off
        per burst of adverts, not one per advert."""

        def readable() -> None:
            batch = self.recv_batch()
            if batch:
                callback(batch)

        self._loop = loop
        loop.add_reader(self.sock.fileno(), readable)

    def close(self) -> None:
        """Stop reading and close; safe to call twice."""
        if self._loop is not None and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()


_TIMESPEC = struct.Struct("qq")


def _timespec(value: bytes) -> float:
    if len(value) < 16:
        return 0.0
    sec, nsec = _TIMESPEC.unpack_from(value)
    return float(sec + nsec * 1e-9)


def _interned(make: Callable[[K], A], limit: int = 4096) -> Callable[[K], A]:
    """Address objects for the few peers and groups a router hears, built once and handed out
    again: building one costs more than the rest of the receive path's header parsing, and the
    engine compares the addresses of a repeated advert by identity first."""
    seen: dict[K, A] = {}

    def lookup(key: K) -> A:
        addr = seen.get(key)
        if addr is None:
            if len(seen) >= limit:
                seen.clear()
            addr = seen[key] = make(key)
        return addr

    return lookup


_addr4: Callable[[bytes], IPv4Address] = _interned(IPv4Address)
_addr6: Callable[[bytes], IPv6Address] = _interned(IPv6Address)
# An IPv6 source as recvmsg gives it ("fe80::1%eth0"), without the scope.
_addr6_text: Callable[[str], IPAddress] = _interned(lambda text: ip_address(text.split("%", 1)[0]))


def _packed(addr: IPAddress | None, size: int) -> bytes:
    return addr.packed if addr is not None else b"\0" * size


class SocketPool:
    """The shared sockets: one `RawSocket` per (interface, family), opened on first use."""

    def __init__(self) -> None:
        self._socks: dict[tuple[str, int], RawSocket] = {}

    def get(self, interface: str, family: int, group: IPAddress | None = None) -> RawSocket:
        """The socket for (interface, family), joined to `group` when one is given."""
        key = (interface, family)
        sock = self._socks.get(key)
        if sock is None:
            sock = RawSocket(interface, family, groups=())
            self._socks[key] = sock
        if group is not None:
            sock.join(group)
        return sock

    def sockets(self) -> list[RawSocket]:
        return list(self._socks.values())

    def retain(self, keys: set[tuple[str, int]]) -> list[RawSocket]:
        """Close the sockets whose (interface, family) is not in `keys` (a reload removed
        their last instance); return them."""
        gone = [sock for key, sock in self._socks.items() if key not in keys]
        for sock in gone:
            del self._socks[(sock.interface, sock.family)]
            sock.close()
        return gone

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
