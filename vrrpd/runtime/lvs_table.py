"""The IPVS table vrrpd wants, from the LVS configuration and the checkers' verdicts (no IO).

keepalived's rules (`check/ipwrapper.c`, man keepalived.conf "Virtual server(s)"), restated:

- Every `virtual_server` is one IPVS service; `virtual_server group NAME` is one service per
  `virtual_server_group` entry (an address range is one service per address), all with the
  same destinations.
- A real server is a destination while it is alive (no checker down), with its effective weight
  (`weight`, or what `misc_dynamic` set). When it fails it is removed, or kept with weight 0 when
  `inhibit_on_failure` is set.
- Quorum: the sum of the weights of the alive real servers. At start it is up when the sum
  reaches `quorum + hysteresis`. While up it is lost when the sum falls below
  `quorum - hysteresis` (or to 0); while down it is regained at `quorum + hysteresis`.
- While the quorum is down and a `sorry_server` is configured, the sorry server is the only live
  destination (the alive real servers leave the pool; inhibited ones stay at weight 0). While the
  quorum is up the sorry server is absent, or present at weight 0 with `sorry_server_inhibit`.

`LvsTable` holds that state; `services()` renders it as `io.ipvs.Service` records for
`Ipvs.apply`, and `update(change)` takes a checker's verdict and returns the quorum event it
caused (with keepalived's log lines), for the service to log and notify.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from vrrpd.check import RsChange
from vrrpd.config.lvsmodel import (
    Forwarding,
    LvsMethod,
    RealServerSpec,
    SorryServerSpec,
    VirtualServerGroupSpec,
    VirtualServerSpec,
    rs_label,
    vs_label,
)
from vrrpd.config.model import Config
from vrrpd.io.ipvs import (
    PROTOCOLS,
    SVC_F_ONEPACKET,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    SVC_F_SCHED3,
    Dest,
    Forward,
    Service,
    ServiceKey,
    TunType,
)

SCHED_FLAGS = {
    "flag-1": SVC_F_SCHED1,
    "sh-fallback": SVC_F_SCHED1,
    "mh-fallback": SVC_F_SCHED1,
    "flag-2": SVC_F_SCHED2,
    "sh-port": SVC_F_SCHED2,
    "mh-port": SVC_F_SCHED2,
    "flag-3": SVC_F_SCHED3,
}
FORWARD = {LvsMethod.NAT: Forward.NAT, LvsMethod.DR: Forward.DR, LvsMethod.TUN: Forward.TUN}
TUN_TYPES = {"ipip": TunType.IPIP, "gue": TunType.GUE, "gre": TunType.GRE}
TUN_CSUM = {None: 0, "nocsum": 0, "csum": 1, "remcsum": 2}

VsKey = tuple[str, int]  # (FMT_VS label, family)
RsKey = tuple[str, int]  # (address, port)


def vs_key(vs: VirtualServerSpec) -> VsKey:
    return (vs_label(vs), vs.family)


def rs_key(rs: RealServerSpec | SorryServerSpec) -> RsKey:
    return (str(rs.address), rs.port)


@dataclass(slots=True)
class RsState:
    """One real server as the table sees it."""

    spec: RealServerSpec
    alive: bool
    weight: int


@dataclass(frozen=True, slots=True)
class QuorumEvent:
    """A virtual server's quorum changed: `lines` are keepalived's log lines, in order."""

    vs: VirtualServerSpec
    up: bool
    lines: tuple[str, ...]


class VsState:
    """One virtual server: its real servers' states and its quorum."""

    def __init__(self, spec: VirtualServerSpec, servers: dict[RsKey, RsState]) -> None:
        self.spec = spec
        self.servers = servers
        self.reloaded = False  # carried over from the configuration before a reload
        # keepalived `set_quorum_states`: up when the alive weight reaches quorum + hysteresis.
        self.quorum_up = self.weight_sum() >= spec.quorum + spec.hysteresis

    def weight_sum(self) -> int:
        return sum(s.weight for s in self.servers.values() if s.alive)

    def update_quorum(self, init: bool = False) -> QuorumEvent | None:
        """keepalived `update_quorum_state`; `init` reports a start with the quorum down."""
        vs, total = self.spec, self.weight_sum()
        label = vs_label(vs)
        threshold = vs.quorum + (-1 if self.quorum_up else 1) * vs.hysteresis
        sorry = vs.sorry_server
        q, h = vs.quorum, vs.hysteresis
        if not self.quorum_up and total >= threshold and not init:
            self.quorum_up = True
            lines = [f"Gained quorum {q}+{h}={threshold} <= {total} for VS {label}"]
            if sorry is not None:
                verb = "Disabling" if sorry.inhibit else "Removing"
                lines.append(f"{verb} sorry server {rs_label(vs, sorry)} from VS {label}")
                lines.append(f"Adding alive servers to the pool for VS {label}")
            return QuorumEvent(vs, True, tuple(lines))
        lost = self.quorum_up and (total == 0 or total < threshold)
        if lost or (init and not self.quorum_up and sorry is not None):
            self.quorum_up = False
            head = "Starting with quorum down" if init else "Lost quorum"
            lines = [f"{head} {q}-{h}={threshold} > {total} for VS {label}"]
            if sorry is not None:
                verb = "Enabling" if sorry.inhibit else "Adding"
                lines.append(f"{verb} sorry server {rs_label(vs, sorry)} to VS {label}")
                lines.append(f"Removing alive servers from the pool for VS {label}")
            return QuorumEvent(vs, False, tuple(lines))
        return None

    def dests(self, service_port: int) -> tuple[Dest, ...]:
        """The destinations of each of this virtual server's IPVS services."""
        sorry = self.spec.sorry_server
        sorry_live = sorry is not None and not self.quorum_up
        out: dict[RsKey, Dest] = {}
        for key, server in self.servers.items():
            if server.alive and not sorry_live:
                out[key] = _dest(server.spec, server.weight, service_port)
            elif server.spec.inhibit_on_failure:
                out[key] = _dest(server.spec, 0, service_port)
        if sorry is not None and (sorry_live or (sorry.inhibit and rs_key(sorry) not in out)):
            out[rs_key(sorry)] = _dest(sorry, 1 if sorry_live else 0, service_port)
        return tuple(out.values())


class LvsTable:
    """Every virtual server's state; what `Ipvs.apply` should make of the kernel table."""

    def __init__(
        self, config: Config, states: Iterable[RsChange], previous: LvsTable | None = None
    ) -> None:
        self.groups = {g.name: g for g in config.virtual_server_groups}
        self.vs: dict[VsKey, VsState] = {}
        by_vs: dict[VsKey, dict[RsKey, RsState]] = {}
        for change in states:
            servers = by_vs.setdefault(vs_key(change.vs), {})
            servers[rs_key(change.rs)] = RsState(change.rs, change.up, change.weight)
        for spec in config.virtual_servers:
            key = vs_key(spec)
            state = VsState(spec, by_vs.get(key, {}))
            old = previous.vs.get(key) if previous is not None else None
            if old is not None:  # a reload keeps the quorum state, as keepalived does
                state.quorum_up, state.reloaded = old.quorum_up, True
            self.vs[key] = state

    def start(self) -> list[QuorumEvent]:
        """The events of the initial state (keepalived `init_service_vs`): a start with the
        quorum down; after a reload, a quorum the new settings or servers gained or lost."""
        events = (s.update_quorum(init=not s.reloaded) for s in self.vs.values())
        return [e for e in events if e is not None]

    def update(self, change: RsChange) -> QuorumEvent | None:
        """A real server went up or down or changed weight; returns the quorum event, if any."""
        state = self.vs.get(vs_key(change.vs))
        if state is None:
            return None
        server = state.servers.get(rs_key(change.rs))
        if server is None:
            return None
        server.alive, server.weight = change.up, change.weight
        return state.update_quorum()

    def services(self) -> list[Service]:
        """The desired IPVS services with their destinations."""
        out: list[Service] = []
        for state in self.vs.values():
            for key in service_keys(state.spec, self.groups):
                out.append(_service(state.spec, key, state.dests(key.port)))
        return out


def service_keys(
    vs: VirtualServerSpec, groups: dict[str, VirtualServerGroupSpec]
) -> Iterator[ServiceKey]:
    """The IPVS services a virtual server stands for (one, or one per group address)."""
    proto = PROTOCOLS[vs.protocol.value.lower()]
    if vs.fwmark is not None:
        yield ServiceKey.mark(vs.fwmark, vs.family)
    elif vs.address is not None:
        yield ServiceKey(vs.family, proto, str(vs.address), vs.port)
    elif vs.group is not None and vs.group in groups:
        for entry in groups[vs.group].entries:
            if entry.fwmark is not None:
                yield ServiceKey.mark(entry.fwmark, entry.family)
                continue
            if entry.first is None:
                continue
            last = entry.last if entry.last is not None else entry.first
            for n in range(int(entry.first), int(last) + 1):
                addr = ip_address(n) if entry.first.version == 4 else ip_address(n.to_bytes(16))
                yield ServiceKey(entry.family, proto, str(addr), entry.port or vs.port)


def _service(vs: VirtualServerSpec, key: ServiceKey, dests: tuple[Dest, ...]) -> Service:
    flags = SVC_F_ONEPACKET if vs.ops else 0
    for name in vs.sched_flags:
        flags |= SCHED_FLAGS.get(name, 0)
    return Service(
        key,
        scheduler=vs.scheduler,
        timeout_s=vs.persistence_timeout_s or 0,
        netmask=_granularity(vs.persistence_granularity, key.family),
        flags=flags,
        pe_name=vs.persistence_engine or "",
        dests=dests,
    )


def _granularity(text: str | None, family: int) -> int | None:
    """`persistence_granularity`: a dotted netmask (IPv4) or a prefix length (IPv6)."""
    if text is None:
        return None
    if family == 6 or "." not in text:
        return int(text)
    return bin(int(IPv4Address(text))).count("1")


def _dest(rs: RealServerSpec | SorryServerSpec, weight: int, service_port: int) -> Dest:
    fwd: Forwarding = rs.forwarding
    return Dest(
        addr=str(rs.address),
        # A port-less real server (fwmark, or a group entry's port) takes the service's port.
        port=rs.port or service_port,
        weight=weight,
        forward=FORWARD[fwd.method],
        u_threshold=getattr(rs, "uthreshold", 0),
        l_threshold=getattr(rs, "lthreshold", 0),
        tun_type=TUN_TYPES.get(fwd.tunnel_type or "ipip", TunType.IPIP),
        tun_port=fwd.tunnel_port or 0,
        tun_flags=TUN_CSUM.get(fwd.tunnel_csum, 0),
    )
