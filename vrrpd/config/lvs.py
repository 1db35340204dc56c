"""keepalived's LVS blocks (man keepalived.conf "LVS CONFIGURATION"): `virtual_server_group`,
`virtual_server IP [PORT] | fwmark N | group NAME {}` and `real_server IP [PORT] {}`, into the
frozen `lvsmodel` with keepalived's defaults (lvs_sched wlc, lvs_method NAT, protocol TCP,
persistence 360 s when given without a value, quorum 1, hysteresis 0, real server weight 1).

Values are parsed by `lvsvalues`, checker blocks by `lvscheck`. Cross-block rules live here:
group references exist, virtual servers and groups are unique, real servers are unique per
virtual server and of the virtual server's address family unless tunnelled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from vrrpd.config.diag import did_you_mean
from vrrpd.config.lexer import Node
from vrrpd.config.lvscheck import CHECKER_NAMES, TIMING_HANDLERS, Inherit, LvsShared, parse_checker
from vrrpd.config.lvsmodel import (
    SCHED_FLAGS,
    Forwarding,
    LvsMethod,
    LvsProtocol,
    RealServerSpec,
    SorryServerSpec,
    VirtualServerGroupSpec,
    VirtualServerSpec,
    vs_label,
)
from vrrpd.config.lvsvalues import (
    DEFAULT_PERSISTENCE_S,
    command_kw,
    forwarding_kw,
    ip_family_kw,
    ip_port,
    parse_vsg,
    persistence_kw,
    protocol_kw,
    sched_kw,
    sorry_kw,
)
from vrrpd.config.model import IPAddress
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    dispatch,
    flag_kw,
    int_kw,
    str_kw,
    unsupported_kw,
)
from vrrpd.errors import Location

_IGNORED = unsupported_kw("not used by vrrpd")


def _collect(key: str) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        d.setdefault(key, []).append(node)

    return handle


CHECKERS: dict[str, Handler] = dict.fromkeys(CHECKER_NAMES, _collect("_checkers"))
RS_HANDLERS: dict[str, Handler] = {
    "weight": int_kw("weight", 0, 65535),
    "lvs_method": forwarding_kw("forwarding"),
    "lb_kind": forwarding_kw("forwarding"),
    "notify_up": command_kw("notify_up"),
    "notify_down": command_kw("notify_down"),
    "uthreshold": int_kw("uthreshold", 0, 65535),
    "lthreshold": int_kw("lthreshold", 0, 65535),
    "inhibit_on_failure": bool_kw("inhibit_on_failure"),
    "virtualhost": str_kw("virtualhost"),
    **TIMING_HANDLERS,
    "smtp_alert": unsupported_kw("accepted but e-mail alerts are not supported by vrrpd"),
    "snmp_name": _IGNORED,
    **CHECKERS,
}
VS_HANDLERS: dict[str, Handler] = {
    "lvs_sched": sched_kw,
    "lb_algo": sched_kw,
    **{flag: _collect("_flags") for flag in SCHED_FLAGS},
    "ops": bool_kw("ops"),
    "lvs_method": forwarding_kw("forwarding"),
    "lb_kind": forwarding_kw("forwarding"),
    "protocol": protocol_kw,
    "persistence_timeout": persistence_kw,
    "persistence_granularity": str_kw("persistence_granularity"),
    "persistence_engine": str_kw("persistence_engine"),
    "quorum": int_kw("quorum", 1, 2**31 - 1),
    "hysteresis": int_kw("hysteresis", 0, 2**31 - 1),
    "quorum_up": command_kw("quorum_up"),
    "quorum_down": command_kw("quorum_down"),
    "sorry_server": sorry_kw,
    "sorry_server_inhibit": flag_kw("_sorry_inhibit", True),
    "sorry_server_lvs_method": forwarding_kw("_sorry_forwarding"),
    "alpha": bool_kw("alpha"),
    "omega": bool_kw("omega"),
    "ha_suspend": bool_kw("ha_suspend"),
    "inhibit_on_failure": bool_kw("inhibit_on_failure"),
    "virtualhost": str_kw("virtualhost"),
    "ip_family": ip_family_kw,
    **{k: v for k, v in TIMING_HANDLERS.items() if k != "alpha"},
    "real_server": _collect("_real_servers"),
    "smtp_alert": unsupported_kw("accepted but e-mail alerts are not supported by vrrpd"),
    "snmp_name": _IGNORED,
    "nat_mask": _IGNORED,
}


def parse_lvs(
    vs_nodes: Iterable[Node], vsg_nodes: Iterable[Node], ctx: Ctx, shared: LvsShared | None = None
) -> tuple[tuple[VirtualServerSpec, ...], tuple[VirtualServerGroupSpec, ...]]:
    """Every `virtual_server_group` and `virtual_server` block, checked across blocks;
    `shared` has the top-level blocks checkers refer to (`SSL`, `track_file`)."""
    groups: dict[str, VirtualServerGroupSpec] = {}
    for node in vsg_nodes:
        group = parse_vsg(node, ctx)
        if group is None:
            continue
        if group.name in groups:
            ctx.error(node.loc, f"virtual_server_group {group.name} is defined twice",
                      f"first defined at {groups[group.name].location}")  # fmt: skip
        else:
            groups[group.name] = group
    servers: list[VirtualServerSpec] = []
    seen: dict[str, Location] = {}
    for node in vs_nodes:
        vs = parse_virtual_server(node, groups, ctx, shared or LvsShared())
        if vs is None:
            continue
        key = f"{vs_label(vs)}/{vs.protocol.value}/{vs.family}"
        if key in seen:
            ctx.error(node.loc, f"virtual_server {vs_label(vs)} is defined twice",
                      f"first defined at {seen[key]}")  # fmt: skip
            continue
        seen[key] = node.loc
        servers.append(vs)
    return tuple(servers), tuple(groups.values())


def _head(node: Node, groups: dict[str, VirtualServerGroupSpec], ctx: Ctx) -> Draft | None:
    """The words after `virtual_server`: `IP [PORT]`, `fwmark N` or `group NAME`."""
    usage = "virtual_server <IP> [<PORT>] | fwmark <N> | group <NAME> { ... }"
    if not node.args:
        ctx.error(node.loc, "'virtual_server' needs an address, fwmark or group", usage)
        return None
    word = node.args[0].text
    if word in ("fwmark", "group"):
        if len(node.args) != 2:
            ctx.error(node.loc, f"virtual_server {word} needs one value", usage)
            return None
        if word == "fwmark":
            mark = ctx.int_(node.args[1], 1, 2**32 - 1, "fwmark")
            return None if mark is None else {"fwmark": mark}
        name = node.args[1].text
        if name not in groups:
            hint = did_you_mean(name, groups) or "define it with virtual_server_group NAME { }"
            ctx.error(node.args[1].loc, f"virtual_server_group '{name}' is not defined", hint)
            return None
        return {"group": name}
    got = ip_port(node, ctx, "virtual_server")
    if got is None:
        return None
    return {"address": got[0], "port": got[1] if got[1] is not None else 0, "_no_port": not got[1]}


def parse_virtual_server(
    node: Node,
    groups: dict[str, VirtualServerGroupSpec],
    ctx: Ctx,
    shared: LvsShared | None = None,
) -> VirtualServerSpec | None:
    """One `virtual_server ... {}` block, its real servers and their checkers."""
    head = _head(node, groups, ctx)
    d: Draft = {}
    dispatch(f"virtual_server:{node.loc}", ctx.block(node), VS_HANDLERS, d, ctx)
    if head is None:
        return None
    d.update(head)
    family = _vs_family(d, groups)
    label = vs_label(VirtualServerSpec(**{k: d[k] for k in HEAD_KEYS if k in d}))
    _vs_quirks(d, label, node, groups, ctx)
    timing = {k: d.pop(k) for k in list(d) if k in TIMING_KEYS}
    inherit_base = {**timing, "alpha": d.get("alpha"), "virtualhost": d.pop("virtualhost", None)}
    vs_inhibit = d.pop("inhibit_on_failure", False)
    rs_nodes: list[Node] = d.pop("_real_servers", [])
    real_servers = _real_servers(
        rs_nodes, d, family, ctx, inherit=inherit_base, vs_inhibit=vs_inhibit,
        shared=shared or LvsShared(),
    )  # fmt: skip
    sorry = _sorry_server(d, family, ctx)
    d["sched_flags"] = tuple(dict.fromkeys(n.name for n in d.pop("_flags", [])))
    _granularity(d, family, node, ctx)
    for key in [k for k in d if k.startswith("_")]:
        del d[key]
    vs = VirtualServerSpec(
        **d, family=family, real_servers=real_servers, sorry_server=sorry, location=node.loc
    )
    return _pool_quirks(vs, label, node, ctx)


HEAD_KEYS = ("address", "port", "fwmark", "group", "protocol")
TIMING_KEYS = ("connect_timeout_s", "retry", "delay_before_retry_s", "warmup_s", "delay_loop_s")


def _vs_family(d: Draft, groups: dict[str, VirtualServerGroupSpec]) -> int:
    if d.get("address") is not None:
        return int(d["address"].version)
    if "_ip_family" in d:
        return int(d["_ip_family"])
    if d.get("group") is not None:
        entries = groups[d["group"]].entries
        first = next((e for e in entries if e.fwmark is None), entries[0] if entries else None)
        return first.family if first is not None else 4
    return 4


def _vs_quirks(
    d: Draft, label: str, node: Node, groups: dict[str, VirtualServerGroupSpec], ctx: Ctx
) -> None:
    """keepalived's start-up fix-ups of a virtual server, each with keepalived's message."""
    by_address = d.get("address") is not None or (
        d.get("group") is not None and any(e.fwmark is None for e in groups[d["group"]].entries)
    )
    if d.get("fwmark") is not None and "protocol" in d:
        ctx.warn(node.loc, f"virtual server {label}: protocol specified for fwmark - protocol "
                 "will be ignored")  # fmt: skip
        del d["protocol"]
    if by_address and "protocol" not in d:
        # keepalived sets UDP (the kernel's default for protocol 0) and reports an error
        ctx.error(node.loc, f"virtual server {label}: no protocol set (keepalived would "
                  "default to UDP)", "add: protocol TCP")  # fmt: skip
    if d.get("_no_port") and d.get("persistence_timeout_s") is None:
        ctx.warn(node.loc, f"virtual server {label}: zero port only valid for persistent "
                 f"services - using persistence_timeout {DEFAULT_PERSISTENCE_S}",
                 "add a port or persistence_timeout")  # fmt: skip
        d["persistence_timeout_s"] = DEFAULT_PERSISTENCE_S
    given = {kw for owner, kw in ctx.locs if owner == f"virtual_server:{node.loc}"}
    for keyword, alias, default in (("lvs_sched", "lb_algo", "wlc"),
                                    ("lvs_method", "lb_kind", "NAT")):  # fmt: skip
        if not given & {keyword, alias}:
            ctx.warn(node.loc, f"virtual server {label}: no {keyword} set, using the default "
                     f"{default}", f"add: {keyword} {default}")  # fmt: skip
    if d.get("ha_suspend") and not by_address:
        ctx.warn(node.loc, f"virtual server {label}: cannot use ha_suspend with fwmarks - "
                 "clearing ha_suspend")  # fmt: skip
        d["ha_suspend"] = False
    if d.get("ops") and by_address and d.get("protocol", LvsProtocol.UDP) is not LvsProtocol.UDP:
        ctx.warn(node.loc, f"virtual server {label}: one packet scheduling (ops) requires "
                 "UDP - resetting")  # fmt: skip
        d["ops"] = False
    if "_sorry_inhibit" in d and "_sorry" not in d:
        ctx.warn(node.loc, "sorry_server_inhibit without sorry_server is ignored")


def _pool_quirks(
    vs: VirtualServerSpec, label: str, node: Node, ctx: Ctx
) -> VirtualServerSpec | None:
    """keepalived drops a virtual server without real servers, and lowers a quorum above the
    total weight and a hysteresis not below the quorum."""
    if not vs.real_servers:
        ctx.warn(node.loc, f"virtual server {label} has no real servers - ignoring")
        return None
    total = sum(rs.weight for rs in vs.real_servers)
    if vs.quorum > total:
        ctx.warn(node.loc, f"quorum {vs.quorum} for {label} exceeds total weight of real "
                 f"servers {total}, reducing quorum to {max(total, 1)}")  # fmt: skip
        vs = replace(vs, quorum=max(total, 1))
    if vs.hysteresis >= vs.quorum:
        ctx.warn(node.loc, f"virtual server {label}: hysteresis {vs.hysteresis} >= quorum "
                 f"{vs.quorum}; setting hysteresis to {vs.quorum - 1}")  # fmt: skip
        vs = replace(vs, hysteresis=vs.quorum - 1)
    return vs


def _granularity(d: Draft, family: int, node: Node, ctx: Ctx) -> None:
    """`persistence_granularity`: a netmask for IPv4, a prefix length for IPv6 (-M)."""
    text = d.get("persistence_granularity")
    if text is None:
        return
    try:
        if family == 6:
            ok = 1 <= int(text) <= 128
        else:
            ok = "." in text and ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen >= 0
    except ValueError:
        ok = False
    if not ok:
        want = "a prefix length 1..128" if family == 6 else "a netmask such as 255.255.255.0"
        ctx.error(node.loc, f"persistence_granularity '{text}' is not {want}")
        del d["persistence_granularity"]


def _sorry_server(d: Draft, family: int, ctx: Ctx) -> SorryServerSpec | None:
    if "_sorry" not in d:
        return None
    (addr, port), loc = d["_sorry"]
    forwarding: Forwarding = d.get("_sorry_forwarding") or d.get("forwarding") or Forwarding()
    if addr.version != family and forwarding.method is not LvsMethod.TUN:
        ctx.error(loc, f"sorry_server {addr} is not IPv{family} like its virtual server",
                  "only tunnelled servers may differ in address family")  # fmt: skip
        return None
    return SorryServerSpec(
        address=addr,
        port=port if port is not None else d.get("port", 0),
        forwarding=forwarding,
        inhibit=bool(d.get("_sorry_inhibit")),
    )


def _real_servers(
    nodes: list[Node],
    vs: Draft,
    family: int,
    ctx: Ctx,
    *,
    inherit: dict[str, Any],
    vs_inhibit: bool,
    shared: LvsShared,
) -> tuple[RealServerSpec, ...]:
    out: list[RealServerSpec] = []
    seen: dict[tuple[IPAddress, int], Location] = {}
    for node in nodes:
        rs = parse_real_server(node, vs, inherit, vs_inhibit, ctx, shared=shared)
        if rs is None:
            continue
        if rs.family != family and rs.forwarding.method is not LvsMethod.TUN:
            ctx.error(node.loc, f"real_server {rs.address} is not IPv{family} like its "
                      "virtual server", "only tunnelled servers may differ in family")  # fmt: skip
            continue
        key = (rs.address, rs.port)
        if key in seen:
            ctx.error(node.loc, f"real_server {rs.address} port {rs.port} is defined twice "
                      "in this virtual_server", f"first defined at {seen[key]}")  # fmt: skip
            continue
        seen[key] = node.loc
        out.append(rs)
    return tuple(out)


def parse_real_server(
    node: Node,
    vs: Draft,
    vs_inherit: dict[str, Any],
    vs_inhibit: bool,
    ctx: Ctx,
    *,
    shared: LvsShared | None = None,
) -> RealServerSpec | None:
    """`real_server IP [PORT] {}`: port defaults to the virtual server's, weight to 1."""
    got = ip_port(node, ctx, "real_server")
    d: Draft = {}
    dispatch(f"real_server:{node.loc}", ctx.block(node) if node.children is not None else (),
             RS_HANDLERS, d, ctx)  # fmt: skip
    if got is None:
        return None
    addr, port = got
    port = port if port is not None else vs.get("port", 0)
    values = {**vs_inherit, **{k: d.pop(k) for k in list(d) if k in (*TIMING_KEYS, "alpha")}}
    if "virtualhost" in d:
        values["virtualhost"] = d.pop("virtualhost")
    delay_loop = vs_inherit.get("delay_loop_s")
    inherit = Inherit(values, addr, port, 60.0 if delay_loop is None else delay_loop,
                      shared or LvsShared())  # fmt: skip
    checkers = [c for n in d.pop("_checkers", []) for c in parse_checker(n, inherit, ctx)]
    d.setdefault("forwarding", vs.get("forwarding", Forwarding()))
    d.setdefault("inhibit_on_failure", vs_inhibit)
    return RealServerSpec(address=addr, port=port, checkers=tuple(checkers), location=node.loc, **d)


__all__ = ["parse_lvs", "parse_real_server", "parse_virtual_server"]
