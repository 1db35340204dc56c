"""Gratuitous ARP and unsolicited Neighbour Advertisements for the virtual addresses.

RFC 5798 section 6.4.1 (a new Master broadcasts a gratuitous ARP per IPv4 VIP and sends an
unsolicited NA per IPv6 VIP, RFC 4861 section 7.2.6); frames as keepalived builds them
(`vrrp_arp.c`, `vrrp_ndisc.c`): ARP REQUEST with sender IP = target IP = VIP and target hardware
address ff:ff:ff:ff:ff:ff to the Ethernet broadcast; NA from the VIP to ff02::1 with hop limit 255,
the Override flag, the Router flag when the interface forwards IPv6, and a target link-layer
address option. Frames are built here with struct and sent on an AF_PACKET socket.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from vrrpd.io.errors import IoError
from vrrpd.proto.advert import IPAddress

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"  # RFC 2464 section 7: 33:33 + low 32 bits
ARP_REQUEST = 1
ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LL = 2
MIN_FRAME = 60  # Ethernet minimum without FCS; real NICs pad, veths do not


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def garp_frame(mac: bytes, vip: IPv4Address) -> bytes:
    """keepalived `send_gratuitous_arp`: broadcast ARP REQUEST announcing `vip` at `mac`."""
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST)
    arp += mac + vip.packed + BROADCAST + vip.packed
    return (eth + arp).ljust(MIN_FRAME, b"\0")


def inet_checksum(data: bytes) -> int:
    """RFC 1071 one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def na_frame(
    mac: bytes, target: IPv6Address, router: bool, src: IPv6Address | None = None
) -> bytes:
    """Unsolicited NA for `target` (RFC 4861 section 4.4 and 7.2.6), sent from `src` or `target`."""
    source = src or target
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LL, 1) + mac
    body = struct.pack("!I", flags) + target.packed + option
    pseudo = source.packed + ALL_NODES.packed + struct.pack("!I3xB", 4 + len(body), ICMPV6)
    csum = inet_checksum(pseudo + struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, 0) + body)
    icmp = struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, csum) + body
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, 255) + source.packed + ALL_NODES.packed
    return ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp


def forwarding6(interface: str) -> bool:
    """Whether the interface forwards IPv6 (then the NA carries the Router flag)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{interface}/forwarding") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


class Announcer:
    """An AF_PACKET socket on one interface that sends GARPs and NAs from its MAC (or `mac`)."""

    def __init__(self, interface: str, mac: str | None = None) -> None:
        self.interface = interface
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise IoError.from_os("cannot open packet socket", interface, exc) from exc
        try:
            self.sock.bind((interface, 0))
            own: bytes = self.sock.getsockname()[4]
        except OSError as exc:
            self.sock.close()
            raise IoError.from_os("cannot bind packet socket", interface, exc) from exc
        self.mac = mac_bytes(mac) if mac else own
        self.router = forwarding6(interface)

    def frame(self, address: IPAddress) -> bytes:
        if isinstance(address, IPv4Address):
            return garp_frame(self.mac, address)
        return na_frame(self.mac, address, self.router)

    def send_one(self, address: IPAddress) -> None:
        try:
            self.sock.send(self.frame(address))
        except OSError as exc:
            raise IoError.from_os(f"cannot announce {address}", self.interface, exc) from exc

    async def burst(self, addresses: Iterable[IPAddress], repeat: int, interval_s: float) -> None:
        """keepalived `garp_master_repeat` rounds over every address, `garp_interval` apart.

        `interval_s` is the gap between two frames on this interface (keepalived's
        `garp_interval` / `gna_interval`); 0 sends each round back to back.
        """
        addrs = tuple(addresses)
        first = True
        for _ in range(max(repeat, 0)):
            for address in addrs:
                if not first and interval_s > 0:
                    await asyncio.sleep(interval_s)
                first = False
                self.send_one(address)

    def close(self) -> None:
        self.sock.close()


async def announce(
    interface: str,
    addresses: Iterable[IPAddress],
    repeat: int,
    interval_s: float = 0.0,
    mac: str | None = None,
) -> None:
    """Run one `core.actions.Announce`: open, burst, close."""
    announcer = Announcer(interface, mac)
    try:
        await announcer.burst(addresses, repeat, interval_s)
    finally:
        announcer.close()
