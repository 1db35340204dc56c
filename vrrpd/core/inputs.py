"""Typed inputs the runtime feeds the pure engine (besides datagrams and timer ticks)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address


@dataclass(frozen=True, slots=True)
class LinkState:
    """What netlink says about one interface.

    `addr4` is the interface's primary IPv4 address and `addr6` its link-local IPv6 address: the
    advert source and the tie-break address when `unicast_src_ip` / `mcast_src_ip` is not set
    (RFC 5798 section 5.1.1.1 / 5.1.2.1).
    """

    interface: str
    ifindex: int
    up: bool
    addr4: IPv4Address | None = None
    addr6: IPv6Address | None = None
