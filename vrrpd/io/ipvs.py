"""IPVS adapter: the kernel's virtual server table over generic netlink (family "IPVS").

keepalived programs IPVS from its checker process (`check/ipvswrapper.c`, `check/libipvs.c`)
with IPVS_CMD_NEW/SET/DEL_SERVICE and _DEST; this module does the same through pyroute2's
`AsyncIPVS` (no ipvsadm). It knows nothing of keepalived.conf: the runtime hands it `Service`
records (its own frozen dataclasses), and `Ipvs.apply(desired)` reads the kernel table and
changes only what differs: a service or destination that is missing is added, one whose
settings differ is edited in place (`set`, never delete-and-add, so connections survive), and a
service this process applied before and no longer wants is deleted. Services it never owned are
left alone, so another director's or an operator's rules survive; a service it wants that is
already there (left by `-I/--dont-release-ipvs`) is adopted without a flap. Every operation is
idempotent: EEXIST on add and ESRCH/ENOENT on delete count as done.

IPVS state is per network namespace: the adapter programs the namespace it runs in.
"""

from __future__ import annotations

import errno
import socket
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from pyroute2.ipvs import AsyncIPVS, IPVSDest, IPVSService
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as nl_ipvs

from vrrpd.io.errors import IoError

IPAddress = IPv4Address | IPv6Address

# include/uapi/linux/ip_vs.h service flags
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002  # set by the kernel on every service; never ours to compare
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020
FLAGS_MASK = 0xFFFFFFFF
IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP = 1, 2  # sync daemon states

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
GONE = frozenset({errno.ESRCH, errno.ENOENT})


class Forward(IntEnum):
    """IP_VS_CONN_F_* forwarding methods; keepalived `lvs_method` NAT|DR|TUN."""

    NAT = 0  # IP_VS_CONN_F_MASQ
    TUN = 2  # IP_VS_CONN_F_TUNNEL
    DR = 3  # IP_VS_CONN_F_DROUTE


class TunType(IntEnum):
    """IP_VS_CONN_F_TUNNEL_TYPE_*: keepalived `lvs_method TUN type ipip|gue|gre`."""

    IPIP = 0
    GUE = 1
    GRE = 2


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """What identifies a virtual service: (family, protocol, VIP, port), or (family, fwmark)."""

    family: int  # 4 or 6
    protocol: int = 0  # IPPROTO_*; 0 for a fwmark service
    addr: str = ""  # "" for a fwmark service
    port: int = 0
    fwmark: int = 0

    @classmethod
    def vip(cls, addr: str | IPAddress, port: int, protocol: str | int = "tcp") -> ServiceKey:
        ip = ip_address(addr)
        proto = PROTOCOLS[protocol.lower()] if isinstance(protocol, str) else protocol
        return cls(ip.version, proto, str(ip), port)

    @classmethod
    def mark(cls, fwmark: int, family: int = 4) -> ServiceKey:
        return cls(family, 0, "", 0, fwmark)

    @property
    def af(self) -> int:
        return socket.AF_INET6 if self.family == 6 else socket.AF_INET

    def __str__(self) -> str:
        """keepalived's FMT_VS: `[192.0.2.10]:tcp:80`, `FWM 1`."""
        if self.fwmark:
            return f"FWM {self.fwmark}"
        return f"[{self.addr}]:{PROTOCOL_NAMES.get(self.protocol, self.protocol)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Dest:
    """One real server of a service (IPVS destination); keepalived `real_server`."""

    addr: str
    port: int
    weight: int = 1
    forward: Forward = Forward.NAT
    u_threshold: int = 0  # uthreshold: 0 = no limit
    l_threshold: int = 0  # lthreshold
    tun_type: TunType = TunType.IPIP
    tun_port: int = 0  # GUE only
    tun_flags: int = 0  # IP_VS_TUNNEL_ENCAP_FLAG_*: 1 csum, 2 remcsum

    @property
    def key(self) -> tuple[str, int]:
        return (self.addr, self.port)

    @property
    def family(self) -> int:
        return ip_address(self.addr).version

    def fmt(self, service: ServiceKey) -> str:
        """keepalived's FMT_RS: `[192.0.2.21]:tcp:80`."""
        proto = PROTOCOL_NAMES.get(service.protocol, "tcp")
        return f"[{self.addr}]:{proto}:{self.port}"


@dataclass(frozen=True, slots=True)
class Service:
    """A virtual service and its destinations.

    `timeout_s` is keepalived `persistence_timeout` (0: not persistent; the PERSISTENT flag
    follows it); `netmask` is `persistence_granularity` as a prefix length (the kernel takes a
    dotted mask for IPv4 and a prefix length for IPv6); `flags` carries the other IP_VS_SVC_F_*
    bits (`ops`, `flag-1..3`); `pe_name` is `persistence_engine`.
    """

    key: ServiceKey
    scheduler: str = "wlc"
    timeout_s: int = 0
    netmask: int | None = None  # None: a host mask, /32 or /128
    flags: int = 0
    pe_name: str = ""
    dests: tuple[Dest, ...] = ()

    @property
    def prefixlen(self) -> int:
        return self.netmask if self.netmask is not None else (128 if self.key.family == 6 else 32)

    @property
    def kernel_flags(self) -> int:
        persistent = SVC_F_PERSISTENT if self.timeout_s else 0
        return (self.flags & ~(SVC_F_PERSISTENT | SVC_F_HASHED)) | persistent

    def settings(self) -> tuple[str, int, int, int, str]:
        """Everything `set` can change, in a form the kernel's dump reproduces."""
        return (self.scheduler, self.kernel_flags, self.timeout_s, self.prefixlen, self.pe_name)


@dataclass
class Changes:
    """What one `apply`/`clear` did, for logging and for tests ("only the differences")."""

    added: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.edited or self.removed or self.errors)


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """One IPVS connection-sync daemon (keepalived `lvs_sync_daemon`); None: kernel default."""

    state: int  # IP_VS_STATE_MASTER or IP_VS_STATE_BACKUP
    interface: str
    sync_id: int = 0
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: IPAddress | None = None

    @property
    def state_name(self) -> str:
        return "master" if self.state == IP_VS_STATE_MASTER else "backup"

    def start_attrs(self) -> list[tuple[str, Any]]:
        attrs: list[tuple[str, Any]] = [("IPVS_DAEMON_ATTR_MCAST_IFN", self.interface),
                                        ("IPVS_DAEMON_ATTR_SYNC_ID", self.sync_id)]  # fmt: skip
        optional = (("SYNC_MAXLEN", self.maxlen), ("MCAST_PORT", self.port),
                    ("MCAST_TTL", self.ttl))  # fmt: skip
        attrs += [(f"IPVS_DAEMON_ATTR_{k}", v) for k, v in optional if v is not None]
        if self.group is not None:
            six = "6" if self.group.version == 6 else ""
            attrs.append((f"IPVS_DAEMON_ATTR_MCAST_GROUP{six}", str(self.group)))
        return attrs


class _daemonmsg(nl_ipvs.ipvsmsg):  # type: ignore[misc]
    """pyroute2's ipvsmsg leaves IPVS_CMD_ATTR_DAEMON opaque: this one nests the daemon
    attributes (include/uapi/linux/ip_vs.h IPVS_DAEMON_ATTR_*)."""

    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
    )

    class daemon(nla):  # type: ignore[misc]
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "be16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


def _code(exc: NetlinkError) -> int:
    return int(getattr(exc, "code", 0) or 0)


class Ipvs:
    """One IPVS generic-netlink socket; create it inside the running loop."""

    def __init__(self) -> None:
        self.sock: AsyncIPVS | None = None
        self.owned: set[ServiceKey] = set()

    async def open(self) -> None:
        """Resolve the IPVS family; a kernel without IPVS is reported as an `IoError`."""
        if self.sock is not None:
            return
        sock = AsyncIPVS()
        try:
            await sock.setup_endpoint()
        except NetlinkError as exc:
            sock.close()
            detail = "IPVS is not available in this kernel (modprobe ip_vs)"
            raise IoError("IPVS", None, _code(exc), detail) from exc
        except OSError as exc:
            sock.close()
            raise IoError.from_os("IPVS", None, exc) from exc
        self.sock = sock

    async def sync_daemon(self, start: bool, daemon: SyncDaemon) -> None:
        """IPVS_CMD_NEW_DAEMON / DEL_DAEMON (what `ipvsadm --start-daemon` / `--stop-daemon`
        do); starting one that runs (EEXIST) or stopping one that does not (ESRCH) is done."""
        sock = await self._sock()
        msg = _daemonmsg()
        msg["cmd"] = nl_ipvs.IPVS_CMD_NEW_DAEMON if start else nl_ipvs.IPVS_CMD_DEL_DAEMON
        msg["version"] = nl_ipvs.GENL_VERSION
        attrs: list[tuple[str, Any]] = [("IPVS_DAEMON_ATTR_STATE", daemon.state)]
        if start:
            attrs += daemon.start_attrs()
        msg["attrs"] = [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]
        flags = NLM_F_REQUEST | NLM_F_ACK
        try:
            async for _ in await sock.nlm_request(msg, msg_type=sock.prid, msg_flags=flags):
                pass
        except NetlinkError as exc:
            if _code(exc) not in (errno.EEXIST if start else errno.ESRCH,):
                what = f"{'start' if start else 'stop'} {daemon.state_name} sync daemon"
                raise IoError(f"IPVS {what}", None, _code(exc)) from exc

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- reading ----------------------------------------------------------------------------

    async def dump(self) -> dict[ServiceKey, Service]:
        """The kernel's whole table in this namespace, destinations included."""
        sock = await self._sock()
        table: dict[ServiceKey, Service] = {}
        for msg in await self._call(sock.service("dump"), "dump services"):
            svc = service_from_nla(msg.get_attr("IPVS_CMD_ATTR_SERVICE"))
            replies = await self._call(sock.dest("dump", service=_nl_service(svc)), "dump dests")
            dests = tuple(dest_from_nla(m.get_attr("IPVS_CMD_ATTR_DEST")) for m in replies)
            table[svc.key] = Service(
                svc.key, svc.scheduler, svc.timeout_s, svc.netmask, svc.flags, svc.pe_name, dests
            )
        return table

    # -- writing ----------------------------------------------------------------------------

    async def apply(self, desired: list[Service] | tuple[Service, ...]) -> Changes:
        """Make the kernel match `desired` for the services we own; touch nothing else.

        One failing operation (say, an unknown scheduler) is recorded in `Changes.errors` and
        the rest still proceeds, so one bad virtual server cannot block the others.
        """
        current = await self.dump()
        changes = Changes()
        wanted = {svc.key: svc for svc in desired}
        for key in sorted(self.owned - wanted.keys()):
            if key in current:
                await self._op("del", key, None, changes, str(key))
        for svc in desired:
            ok = await self._apply_service(svc, current.get(svc.key), changes)
            if ok:
                self.owned.add(svc.key)
        self.owned &= wanted.keys()
        return changes

    async def clear(self) -> Changes:
        """Delete every service we own (keepalived on stop, unless -I)."""
        changes = Changes()
        current = await self.dump()
        for key in sorted(self.owned):
            if key in current:
                await self._op("del", key, None, changes, str(key))
        self.owned.clear()
        return changes

    async def _apply_service(self, svc: Service, cur: Service | None, changes: Changes) -> bool:
        if cur is None:
            if not await self._op("add", svc, None, changes, str(svc.key)):
                return False
            have: dict[tuple[str, int], Dest] = {}
        else:
            if cur.settings() != svc.settings():
                await self._op("set", svc, None, changes, str(svc.key))
            have = {d.key: d for d in cur.dests}
        want = {d.key: d for d in svc.dests}
        for key, dest in have.items():
            if key not in want:
                await self._op("del", svc, dest, changes, f"{dest.fmt(svc.key)} of {svc.key}")
        for key, dest in want.items():
            what = f"{dest.fmt(svc.key)} of {svc.key}"
            if key not in have:
                await self._op("add", svc, dest, changes, what)
            elif have[key] != dest:
                await self._op("set", svc, dest, changes, what)
        return True

    async def _op(
        self,
        cmd: str,
        svc: Service | ServiceKey,
        dest: Dest | None,
        changes: Changes,
        what: str,
    ) -> bool:
        """One add/set/del; returns False (and records why) when the kernel refused."""
        sock = await self._sock()
        service = _nl_service(svc if isinstance(svc, Service) else Service(svc))
        try:
            if dest is None:
                await sock.service(cmd, service=service)
            else:
                await sock.dest(cmd, service=service, dest=_nl_dest(dest))
        except NetlinkError as exc:
            code = _code(exc)
            if cmd == "add" and code == errno.EEXIST:
                return True  # someone (a previous run) already added it
            if cmd == "del" and code in GONE:
                return True
            changes.errors.append(f"{cmd} {what}: {IoError('IPVS', None, code)}")
            return False
        {"add": changes.added, "set": changes.edited, "del": changes.removed}[cmd].append(what)
        return True

    async def _sock(self) -> AsyncIPVS:
        await self.open()
        assert self.sock is not None
        return self.sock

    async def _call(self, coro: Any, what: str) -> list[Any]:
        try:
            return list(await coro)
        except NetlinkError as exc:
            raise IoError(f"IPVS {what}", None, _code(exc)) from exc


# -- netlink records ---------------------------------------------------------------------------


def _nl_service(svc: Service) -> IPVSService:
    key = svc.key
    fields: dict[str, Any] = {
        "af": key.af,
        "sched_name": svc.scheduler,
        "timeout": svc.timeout_s,
        "flags": {"flags": svc.kernel_flags, "mask": FLAGS_MASK},
        # IPv4: a dotted mask; IPv6: the prefix length in the same 32-bit attribute.
        "netmask": _netmask(key.family, svc.prefixlen),
    }
    if key.fwmark:
        fields["fwmark"] = key.fwmark
    else:
        fields.update(protocol=key.protocol, addr=key.addr, port=key.port)
    if svc.pe_name:
        fields["pe_name"] = svc.pe_name
    return IPVSService(**fields)


def _nl_dest(dest: Dest) -> IPVSDest:
    return IPVSDest(
        addr=dest.addr,
        port=dest.port,
        weight=dest.weight,
        fwd_method=int(dest.forward),
        u_thresh=dest.u_threshold,
        l_thresh=dest.l_threshold,
        tun_type=int(dest.tun_type),
        tun_port=dest.tun_port,
        tun_flags=dest.tun_flags,
    )


def _netmask(family: int, prefixlen: int) -> str:
    """IPVS_SVC_ATTR_NETMASK as pyroute2 encodes it (an IPv4 address, network order).

    For IPv6 the kernel reads the same 32 bits as a prefix length in host byte order
    (`ip_vs_add_service`), as libipvs writes it with nla_put_u32."""
    if family == 6:
        return str(IPv4Address(prefixlen.to_bytes(4, sys.byteorder)))
    return str(IPv4Address((0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF))


def _prefixlen(family: int, netmask: str | None) -> int | None:
    if netmask is None:
        return None
    packed = IPv4Address(netmask).packed
    if family == 6:
        return int.from_bytes(packed, sys.byteorder)
    return bin(int.from_bytes(packed, "big")).count("1")


def service_from_nla(nla: Any) -> Service:
    """A dumped IPVS_CMD_ATTR_SERVICE as a `Service` (without destinations)."""
    family = 6 if nla.get_attr("IPVS_SVC_ATTR_AF") == socket.AF_INET6 else 4
    fwmark = nla.get_attr("IPVS_SVC_ATTR_FWMARK") or 0
    if fwmark:
        key = ServiceKey.mark(fwmark, family)
    else:
        key = ServiceKey(
            family,
            nla.get_attr("IPVS_SVC_ATTR_PROTOCOL") or 0,
            str(ip_address(nla.get_attr("IPVS_SVC_ATTR_ADDR"))),
            nla.get_attr("IPVS_SVC_ATTR_PORT") or 0,
        )
    flags = nla.get_attr("IPVS_SVC_ATTR_FLAGS")
    return Service(
        key,
        scheduler=nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or "",
        timeout_s=nla.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0,
        netmask=_prefixlen(family, nla.get_attr("IPVS_SVC_ATTR_NETMASK")),
        flags=(flags["flags"] if flags is not None else 0) & ~SVC_F_HASHED,
        pe_name=nla.get_attr("IPVS_SVC_ATTR_PE_NAME") or "",
    )


def dest_from_nla(nla: Any) -> Dest:
    """A dumped IPVS_CMD_ATTR_DEST as a `Dest`."""
    return Dest(
        addr=str(ip_address(nla.get_attr("IPVS_DEST_ATTR_ADDR"))),
        port=nla.get_attr("IPVS_DEST_ATTR_PORT") or 0,
        weight=nla.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
        forward=Forward(nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0),
        u_threshold=nla.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        l_threshold=nla.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
        tun_type=TunType(nla.get_attr("IPVS_DEST_ATTR_TUN_TYPE") or 0),
        tun_port=nla.get_attr("IPVS_DEST_ATTR_TUN_PORT") or 0,
        tun_flags=nla.get_attr("IPVS_DEST_ATTR_TUN_FLAGS") or 0,
    )


def address_is_local(addr: str | IPAddress) -> bool:
    """Whether `addr` is configured on an interface of this namespace (keepalived
    `ha_suspend` watches the virtual server's address). A bind succeeds only for a local
    address; with `ip_nonlocal_bind` set it always succeeds, so the checkers never pause."""
    ip = ip_address(addr)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((str(ip), 0))
        except OSError:
            return False
    return True
