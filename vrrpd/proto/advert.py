"""The VRRP advertisement as a value, and the datagram a socket hands up.

RFC 3768 section 5.1 (VRRPv2) and RFC 5798 / RFC 9568 section 5.1 (VRRPv3). `Advert` holds the
fields exactly as they travel, so `decode(encode(a)) == a`; the checksum is not a field because it
is derived from the rest (and, for VRRPv3 over IPv4, from the IP addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from vrrpd.proto.constants import AUTH_NONE, VRRP_VERSION_2

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement (type 1).

    `adver_int` is in the unit of the wire field: whole seconds for VRRPv2 (RFC 3768 5.3.7),
    centiseconds for VRRPv3 (RFC 5798 5.2.7). `adver_int_cs` gives centiseconds for both.
    `auth_type` and `auth_data` exist only in VRRPv2; for VRRPv3 they are 0 and b"".
    """

    version: int
    vrid: int
    priority: int
    adver_int: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""

    @property
    def adver_int_cs(self) -> int:
        """The advertisement interval in centiseconds whatever the version."""
        return self.adver_int * 100 if self.version == VRRP_VERSION_2 else self.adver_int

    @property
    def family(self) -> int:
        """4 or 6; an advert with no addresses is IPv4 unless it carries IPv6 ones."""
        if self.addresses and isinstance(self.addresses[0], IPv6Address):
            return 6
        return 4


class Datagram(NamedTuple):
    """What the IO layer hands up for one received VRRP packet.

    `data` is the VRRP message (the IP header already stripped), `ttl` the IPv4 TTL or IPv6 hop
    limit, `dst` the packet's destination (the multicast group or our unicast address), `ifindex`
    the receiving interface, `rx_at` the kernel's receive time (CLOCK_REALTIME seconds from
    SO_TIMESTAMPNS; 0.0 when unknown): the runtime dates the advert's arrival by it.

    A named tuple, not a frozen dataclass: a Backup of 200 instances at 100 ms builds 2000 a
    second, and a tuple is built several times faster.
    """

    data: bytes
    src: IPAddress
    dst: IPAddress
    ifindex: int
    ttl: int
    rx_at: float = 0.0

    @property
    def family(self) -> int:
        return 6 if isinstance(self.src, IPv6Address) else 4
