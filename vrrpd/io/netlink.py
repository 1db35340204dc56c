"""Netlink adapter: virtual addresses, routes and rules, and interface facts.

keepalived `virtual_ipaddress`, `virtual_routes`, `virtual_rules` (`vrrp_ipaddress.c`,
`vrrp_iproute.c`, `vrrp_iprule.c`). Every change is idempotent, as DESIGN.md asks: adding what
exists (EEXIST) and deleting what is gone (EADDRNOTAVAIL, ENOENT, ESRCH, ENODEV) are success.
IPv6 VIPs get IFA_F_NODAD unless the config said otherwise, and a /128 gets preferred_lft 0
(filled in by the config front-end), so it is never chosen as a source (keepalived 4.7).

pyroute2's synchronous `IPRoute` cannot be used inside a running asyncio loop in 0.9.x (it runs
its own loop), so this module uses `AsyncIPRoute` and every call is a coroutine.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_interface,
    ip_network,
)
from typing import Any

from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.config.model import RouteSpec, RuleSpec, VipSpec
from vrrpd.io.errors import IoError

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_NODAD = 0x02
IFA_F_HOMEADDRESS = 0x10
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
IFA_F_SECONDARY = 0x01
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
FOREVER = 0xFFFFFFFF

GONE_ON_DELETE = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH, errno.ENODEV})
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
TABLES = {"default": 253, "main": 254, "local": 255}


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What netlink says about one interface; the runtime turns it into `core.inputs.LinkState`.

    `addr4` is the primary IPv4 address and `addr6` the usable (non-tentative) link-local IPv6
    address: the default advert sources (RFC 5798 section 5.1.1.1 / 5.1.2.1).
    """

    interface: str
    ifindex: int
    up: bool
    addr4: IPv4Address | None = None
    addr6: IPv6Address | None = None
    mac: str = ""


def _code(exc: NetlinkError) -> int:
    return int(getattr(exc, "code", 0) or 0)


class Netlink:
    """One rtnetlink connection; create and use it inside the running loop."""

    def __init__(self) -> None:
        self.ipr = AsyncIPRoute()

    async def close(self) -> None:
        self.ipr.close()

    # -- interfaces -------------------------------------------------------------------------

    async def ifindex(self, interface: str) -> int:
        """The ifindex of `interface`, or `IoError` ENODEV.

        One SIOCGIFINDEX ioctl, not pyroute2's `link_lookup` (a dump of every link): it sits on
        the takeover path between the first advert and the gratuitous ARPs.
        """
        try:
            return socket.if_nametoindex(interface)
        except (OSError, ValueError):
            raise IoError("no such interface", interface, errno.ENODEV) from None

    async def link_info(self, interface: str) -> LinkInfo:
        """Up/down, primary IPv4, link-local IPv6 and MAC of `interface`."""
        index = await self.ifindex(interface)
        links = [msg async for msg in await self.ipr.link("dump")]
        link = next(m for m in links if m["index"] == index)
        addrs = [msg async for msg in await self.ipr.addr("dump", index=index)]
        return link_info_from(link, addrs)

    # -- addresses --------------------------------------------------------------------------

    async def add_vips(self, interface: str, vips: Iterable[VipSpec]) -> None:
        """keepalived `setting VIPs.`: add each address; EEXIST is success."""
        for vip in vips:
            kwargs = await self._addr_args(interface, vip)
            await self._call("add", vip.dev or interface, str(vip.address), self.ipr.addr, kwargs)

    async def del_vips(self, interface: str, vips: Iterable[VipSpec]) -> None:
        """keepalived `removing VIPs.`: delete each address; already gone is success."""
        for vip in vips:
            dev = vip.dev or interface
            try:
                index = await self.ifindex(dev)
            except IoError:
                continue  # the interface is gone, and its addresses with it
            kwargs = {
                "index": index,
                "address": str(vip.ip),
                "prefixlen": vip.address.network.prefixlen,
            }
            await self._call("del", dev, str(vip.address), self.ipr.addr, kwargs)

    async def _addr_args(self, interface: str, vip: VipSpec) -> dict[str, Any]:
        dev = vip.dev or interface
        args: dict[str, Any] = {
            "index": await self.ifindex(dev),
            "address": str(vip.ip),
            "prefixlen": vip.address.network.prefixlen,
        }
        flags = 0
        if isinstance(vip.address, IPv4Interface):
            brd = _broadcast(vip)
            if brd is not None:
                args["broadcast"] = brd
            if vip.label:
                args["label"] = vip.label
        elif not vip.dad:
            flags |= IFA_F_NODAD
        if vip.peer is not None:
            args["local"], args["address"] = str(vip.ip), str(vip.peer)
        if vip.scope is not None:
            args["scope"] = SCOPES[vip.scope] if vip.scope in SCOPES else int(vip.scope)
        if vip.preferred_lft is not None:
            args["preferred_lft"] = vip.preferred_lft
            args["valid_lft"] = FOREVER
        flags |= (
            (IFA_F_HOMEADDRESS if vip.home else 0)
            | (IFA_F_MANAGETEMPADDR if vip.mngtmpaddr else 0)
            | (IFA_F_NOPREFIXROUTE if vip.noprefixroute else 0)
            | (IFA_F_MCAUTOJOIN if vip.autojoin else 0)
        )
        if flags:
            args["IFA_FLAGS"] = flags
        return args

    async def _call(
        self, command: str, dev: str | None, what: str, method: Any, kwargs: dict[str, Any]
    ) -> None:
        try:
            await method(command, **kwargs)
        except NetlinkError as exc:
            code = _code(exc)
            if command == "add" and code == errno.EEXIST:
                return
            if command == "del" and code in GONE_ON_DELETE:
                return
            raise IoError(f"cannot {command} {what}", dev, code) from exc
        except (OSError, ValueError, KeyError) as exc:
            raise IoError(f"cannot {command} {what}", dev, detail=str(exc)) from exc

    # -- routes and rules -------------------------------------------------------------------

    async def add_routes(self, routes: Iterable[RouteSpec]) -> None:
        """keepalived `virtual_routes`: `ip route add` from the parsed fields; EEXIST is success."""
        for route in routes:
            await self._call(
                "add", route.dev, _text(route.args), self.ipr.route, await self._route_args(route)
            )

    async def del_routes(self, routes: Iterable[RouteSpec]) -> None:
        for route in routes:
            try:
                kwargs = await self._route_args(route)
            except IoError:
                continue  # its device is gone, and the route with it
            await self._call("del", route.dev, _text(route.args), self.ipr.route, kwargs)

    async def _route_args(self, route: RouteSpec) -> dict[str, Any]:
        args: dict[str, Any] = {"family": _af(route.family)}
        if route.dst and route.dst != "default":
            net = ip_network(route.dst, strict=False)
            args["dst"], args["dst_len"] = str(net.network_address), net.prefixlen
        elif route.dst == "default":
            args["dst_len"] = 0
        if route.via is not None:
            args["gateway"] = str(route.via)
        if route.dev:
            args["oif"] = await self.ifindex(route.dev)
        if route.src is not None:
            args["prefsrc"] = str(route.src)
        if route.table:
            args["table"] = _table(route.table)
        if route.metric is not None:
            args["priority"] = route.metric
        if route.scope:
            args["scope"] = SCOPES.get(route.scope, route.scope)
        if route.protocol:
            args["proto"] = route.protocol
        if route.type:
            args["type"] = route.type
        return args

    async def add_rules(self, rules: Iterable[RuleSpec]) -> None:
        """keepalived `virtual_rules`: `ip rule add` from the parsed fields; EEXIST is success."""
        for rule in rules:
            await self._call("add", None, _text(rule.args), self.ipr.rule, _rule_args(rule))

    async def del_rules(self, rules: Iterable[RuleSpec]) -> None:
        for rule in rules:
            await self._call("del", None, _text(rule.args), self.ipr.rule, _rule_args(rule))


def _rule_args(rule: RuleSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"family": _af(rule.family)}
    for key, value in (("src", rule.from_), ("dst", rule.to)):
        if value and value != "all":
            net = ip_network(value, strict=False)
            args[key], args[f"{key}_len"] = str(net.network_address), net.prefixlen
    if rule.table:
        args["table"] = _table(rule.table)
    if rule.preference is not None:
        args["priority"] = rule.preference
    if rule.fwmark:
        mark, _, mask = rule.fwmark.partition("/")
        args["fwmark"] = int(mark, 0)
        if mask:
            args["fwmask"] = int(mask, 0)
    if rule.iif:
        args["iifname"] = rule.iif
    if rule.oif:
        args["oifname"] = rule.oif
    if rule.action:
        args["action"] = rule.action
    return args


def _af(family: int) -> int:
    return socket.AF_INET6 if family == 6 else socket.AF_INET


def _table(table: str) -> int:
    if table in TABLES:
        return TABLES[table]
    try:
        return int(table, 0)
    except ValueError:
        raise IoError(f"unknown routing table {table!r} (use a number)") from None


def _text(args: tuple[str, ...]) -> str:
    return " ".join(args)


def _broadcast(vip: VipSpec) -> str | None:
    """`brd +` computes the broadcast address, `brd -` sets none, an IP sets that one."""
    if vip.brd is None or vip.brd == "-":
        return None
    if vip.brd == "+":
        return str(vip.address.network.broadcast_address)
    return vip.brd


def parse_addr(msg: Any) -> tuple[IPv4Interface | IPv6Interface, int] | None:
    """(address/prefix, IFA flags) of one ifaddrmsg, or None if it carries no address."""
    raw = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    if raw is None:
        return None
    flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
    return ip_interface(f"{raw}/{msg['prefixlen']}"), int(flags)


def link_info_from(link: Any, addrs: Iterable[Any]) -> LinkInfo:
    """Build `LinkInfo` from an ifinfmsg and that interface's ifaddrmsgs (in kernel order)."""
    return link_info_parsed(link, [a for a in map(parse_addr, addrs) if a is not None])


def link_info_parsed(
    link: Any, addrs: Iterable[tuple[IPv4Interface | IPv6Interface, int]]
) -> LinkInfo:
    """`link_info_from` over addresses already parsed by `parse_addr` (the monitor keeps them
    parsed: re-parsing every address on every change made adding 200 VIPs quadratic)."""
    addr4: IPv4Address | None = None
    addr6: IPv6Address | None = None
    for iface, flags in addrs:
        ip = iface.ip
        if isinstance(ip, IPv4Address):
            if addr4 is None and not flags & IFA_F_SECONDARY:
                addr4 = ip
        elif addr6 is None and ip.is_link_local:
            usable = not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            addr6 = ip if usable else None
    return LinkInfo(
        interface=str(link.get_attr("IFLA_IFNAME")),
        ifindex=int(link["index"]),
        up=bool(link["flags"] & IFF_UP) and bool(link["flags"] & IFF_RUNNING),
        addr4=addr4,
        addr6=addr6,
        mac=str(link.get_attr("IFLA_ADDRESS") or ""),
    )
