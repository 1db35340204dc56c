"""Watch links and addresses over rtnetlink and report them as `LinkInfo` / `AddrChange`.

keepalived follows interface state and addresses through its netlink monitor (`vrrp_netlink.c`):
a link going down faults the instances on it (keepalived `track_interface`, RFC 5798 leaves this
to the implementation), and a VIP deleted from outside is noticed and re-added or faulted. We
subscribe to RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR on a plain non-blocking netlink
socket read with `loop.add_reader`, and parse messages with pyroute2's marshal.

The socket is bound to the groups *before* the initial dump, so no change between the dump and
the first read is lost; on ENOBUFS (the kernel dropped events) the state is dumped again.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

import structlog
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from vrrpd.io.errors import IoError
from vrrpd.io.netlink import LinkInfo, link_info_parsed, parse_addr

log = structlog.get_logger("vrrpd.io.monitor")

GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
RCVBUF = 1 << 20
DUMP_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class AddrChange:
    """An address appeared on or vanished from an interface (`ip monitor address`)."""

    interface: str
    ifindex: int
    address: IPv4Interface | IPv6Interface
    added: bool


LinkEvent = LinkInfo | AddrChange


def _open(groups: int) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind((0, groups))
    return sock


def _dump(kind: int) -> list[Any]:
    """One blocking RTM_GETLINK / RTM_GETADDR dump on a private socket."""
    msg = ifinfmsg() if kind == RTM_GETLINK else ifaddrmsg()
    msg["header"]["type"] = kind
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    msg["header"]["sequence_number"] = 1
    msg["family"] = socket.AF_UNSPEC
    msg.encode()
    marshal = MarshalRtnl()
    out: list[Any] = []
    with _open(0) as sock:
        sock.settimeout(DUMP_TIMEOUT_S)
        sock.send(msg.data)
        while True:
            for reply in marshal.parse(sock.recv(RCVBUF)):
                mtype = reply["header"]["type"]
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    raise IoError("netlink dump failed", err=abs(reply["header"].get("error") or 0))
                out.append(reply)


Addr = tuple[IPv4Interface | IPv6Interface, int]  # (address/prefix, IFA flags)


class LinkMonitor:
    """Call `callback(LinkInfo | AddrChange)` from the loop whenever a link or address changes.

    A `LinkInfo` is reported once per interface at `start()` and then only when it changes;
    every address addition and deletion is reported as an `AddrChange`.
    """

    def __init__(self, callback: Callable[[LinkEvent], None]) -> None:
        self.callback = callback
        self._links: dict[int, Any] = {}
        self._addrs: dict[int, list[Addr]] = {}  # parsed once, kernel order
        self._reported: dict[int, LinkInfo] = {}
        self._marshal = MarshalRtnl()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Subscribe, dump the current state (reporting each link), then read events."""
        try:
            self._sock = _open(GROUPS)
            self._sock.setblocking(False)
            self.resync()
        except OSError as exc:
            self.close()
            raise IoError.from_os("cannot open netlink monitor", None, exc) from exc
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._readable)

    def info(self, interface: str) -> LinkInfo | None:
        """The last reported state of `interface`, if it exists."""
        return next((i for i in self._reported.values() if i.interface == interface), None)

    def resync(self) -> None:
        """Replace the cache with a fresh dump and report whatever differs."""
        self._links = {m["index"]: m for m in _dump(RTM_GETLINK)}
        self._addrs = {}
        for msg in _dump(RTM_GETADDR):
            parsed = parse_addr(msg)
            if parsed is not None:
                self._addrs.setdefault(msg["index"], []).append(parsed)
        for index in list(self._reported):
            if index not in self._links:
                del self._reported[index]
        for index in self._links:
            self._report(index)

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(RCVBUF)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("netlink events lost; dumping state again")
                    self.resync()
                    continue
                log.error("netlink monitor read failed", error=str(exc))
                return
            for msg in self._marshal.parse(data):
                self._handle(msg)

    def _handle(self, msg: Any) -> None:
        mtype, index = msg["header"]["type"], msg.get("index")
        if mtype == RTM_NEWLINK:
            self._links[index] = msg
        elif mtype == RTM_DELLINK:
            self._links.pop(index, None)
            self._addrs.pop(index, None)
            self._reported.pop(index, None)
            return
        elif mtype in (RTM_NEWADDR, RTM_DELADDR):
            self._address(mtype == RTM_NEWADDR, msg)
        else:
            return
        self._report(index)

    def _address(self, added: bool, msg: Any) -> None:
        index = msg["index"]
        parsed = parse_addr(msg)
        if parsed is None:
            return
        addr = parsed[0]
        current = self._addrs.setdefault(index, [])
        known = [a for a in current if a[0] == addr]
        for old in known:
            current.remove(old)
        if added:
            current.append(parsed)
        if not (added and known):  # a flags update of a known address is no change
            link = self._links.get(index)
            name = str(link.get_attr("IFLA_IFNAME")) if link is not None else str(index)
            self.callback(AddrChange(name, index, addr, added))

    def _report(self, index: int) -> None:
        link = self._links.get(index)
        if link is None:
            return
        info = link_info_parsed(link, self._addrs.get(index, []))
        if self._reported.get(index) != info:
            self._reported[index] = info
            self.callback(info)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock, self._loop = None, None


def iter_events(events: list[LinkEvent], interface: str) -> Iterator[LinkEvent]:
    """The events about `interface` (a helper for tests and the runtime's logging)."""
    return (e for e in events if e.interface == interface)
