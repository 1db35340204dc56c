"""keepalived `vrrp_instance NAME {}` (man keepalived.conf "VRRP instance(s)"), with keepalived's
defaults and quirks applied by `finish_instance`.
"""

from __future__ import annotations

from dataclasses import replace

from vrrpd.config.instance_keywords import INSTANCE_HANDLERS
from vrrpd.config.lexer import Node
from vrrpd.config.model import (
    GlobalDefs,
    InitialState,
    InstanceConfig,
    NotifySpec,
    TrackRef,
    UnicastPeer,
    VipSpec,
    VmacSpec,
)
from vrrpd.config.values import (
    Ctx,
    Draft,
    dispatch,
)
from vrrpd.errors import Location
from vrrpd.proto.constants import vmac


class _Where:
    """Finds the location of an instance keyword for a diagnostic (the block if not given)."""

    def __init__(self, name: str, loc: Location, ctx: Ctx) -> None:
        self.owner, self.loc, self.ctx = f"vrrp_instance:{name}", loc, ctx

    def __call__(self, keyword: str) -> Location:
        return self.ctx.locs.get((self.owner, keyword), self.loc)


def _family(d: Draft, ctx: Ctx) -> int:
    """The first VIP fixes the family; VIPs of the other family are errors and dropped."""
    vips: list[VipSpec] = d.get("vips", [])
    if vips:
        family = vips[0].address.version
    elif d.get("src_ip") is not None:
        family = d["src_ip"].version
    elif d.get("unicast_peers"):
        family = d["unicast_peers"][0].address.version
    else:
        family = 6 if d.get("_native_ipv6") else 4
    keep = []
    for vip in vips:
        if vip.address.version != family:
            ctx.error(
                vip.location,
                f"virtual_ipaddress {vip.address} is not IPv{family} like the first one",
                "put it in virtual_ipaddress_excluded",
            )
        else:
            keep.append(vip)
    d["vips"] = keep
    return family


def _version(d: Draft, family: int, g: GlobalDefs, ctx: Ctx, at: _Where) -> int:
    version: int = d.get("version", g.vrrp_version)
    if family == 6 and version == 2:
        if "version" in d:
            ctx.warn(at("version"), "VRRPv2 does not support IPv6; using version 3")
        version = 3
    return version


def _advert_int_cs(d: Draft, version: int, ctx: Ctx, at: _Where) -> int | None:
    """`advert_int`: whole seconds for v2 (rounded with a warning), 10 ms steps for v3."""
    secs: float = d.get("_advert_int_s", 1.0)
    if version == 2:
        whole = max(1, int(secs + 0.5))
        if whole != secs:
            ctx.warn(
                at("advert_int"),
                f"VRRPv2 advert_int must be whole seconds; {secs:g} rounded to {whole}",
                "use 'version 3' for sub-second adverts",
            )
        return whole * 100
    cs = int(secs * 100 + 0.5)
    if not 1 <= cs <= 4095:
        ctx.error(
            at("advert_int"), f"VRRPv3 advert_int {secs:g} is out of range", "use 0.01..40.95 s"
        )
        return None
    if abs(cs / 100 - secs) > 1e-9:
        ctx.warn(at("advert_int"), f"advert_int {secs:g} rounded to {cs / 100:g} s (10 ms steps)")
    return cs


def _preemption(d: Draft, priority: int, strict: bool, ctx: Ctx, at: _Where) -> None:
    """keepalived clears nopreempt for state MASTER or priority 255, and preempt_delay with
    nopreempt, state MASTER or strict mode, each with a warning."""
    master = d.get("initial_state") is InitialState.MASTER
    if not d.get("preempt", True) and (master or priority == 255):
        why = "state MASTER" if master else "priority 255"
        ctx.warn(at("nopreempt"), f"nopreempt is ignored with {why}", "use state BACKUP")
        d["preempt"] = True
    if d.get("preempt_delay_s"):
        why = (
            "nopreempt"
            if not d.get("preempt", True)
            else "state MASTER"
            if master
            else "strict mode"
            if strict
            else ""
        )
        if why:
            ctx.warn(at("preempt_delay"), f"preempt_delay is ignored with {why}")
            d["preempt_delay_s"] = 0.0


def _transport(d: Draft, family: int, g: GlobalDefs, ctx: Ctx, at: _Where) -> None:
    """Unicast peers vs multicast group, and the source check they imply."""
    peers: list[UnicastPeer] = d.get("unicast_peers", [])
    for peer in peers:
        if peer.address.version != family:
            ctx.error(at("unicast_peer"), f"unicast_peer {peer.address} is not IPv{family}")
    src = d.get("src_ip")
    if src is not None and src.version != family:
        ctx.error(
            at("unicast_src_ip") if "unicast_src_ip" in _kws(at) else at("mcast_src_ip"),
            f"source address {src} is not IPv{family}",
        )
    if peers:
        d["mcast_group"] = None
    else:
        group = d.get("mcast_group") or (g.mcast_group4 if family == 4 else g.mcast_group6)
        if group.version != family:
            ctx.error(at("mcast_dst_ip"), f"mcast_dst_ip {group} is not IPv{family}")
        d["mcast_group"] = group
    check = d.pop("_ttl_check", False) or d.get("check_unicast_src", g.check_unicast_src)
    d["check_unicast_src"] = bool(check)


def _kws(at: _Where) -> set[str]:
    return {kw for owner, kw in at.ctx.locs if owner == at.owner}


def _strict(d: Draft, priority: int, ctx: Ctx, at: _Where) -> None:
    """`vrrp_strict`/`strict_mode` (man5): no auth, no unicast, MASTER only as owner."""
    if d.get("auth") is not None:
        ctx.warn(at("authentication"), "authentication is ignored in strict mode")
        d["auth"] = None
    if d.get("unicast_peers"):
        ctx.error(
            at("unicast_peer"),
            "unicast_peer is not allowed in strict mode",
            "remove vrrp_strict/strict_mode or the unicast peers",
        )
    if d.get("initial_state") is InitialState.MASTER and priority != 255:
        ctx.warn(at("state"), "state MASTER needs priority 255 in strict mode; using BACKUP")
        d["initial_state"] = InitialState.BACKUP
    d.setdefault("accept", priority == 255)


def _vmac(d: Draft, family: int, g: GlobalDefs, ctx: Ctx, at: _Where) -> None:
    vrid: int = d["vrid"]
    spec = d.pop("_vmac", None)
    xmit_base = d.pop("_vmac_xmit_base", False)
    if spec is None:
        if xmit_base:
            ctx.warn(at("vmac_xmit_base"), "vmac_xmit_base without use_vmac is ignored")
        return
    # keepalived forces vmac_xmit_base for unicast instances using a VMAC
    d["vmac"] = VmacSpec(
        name=spec["name"] or f"{g.vmac_prefix}.{vrid}",
        mac=spec["mac"] or vmac(vrid, family),
        xmit_base=xmit_base or bool(d.get("unicast_peers")),
    )


def parse_instance(node: Node, g: GlobalDefs, ctx: Ctx) -> InstanceConfig | None:
    """One `vrrp_instance NAME {}` block into an `InstanceConfig` with defaults resolved."""
    if not ctx.nargs(node, 1, 1, "NAME { ... }"):
        return None
    name = node.args[0].text
    d: Draft = {}
    dispatch(f"vrrp_instance:{name}", ctx.block(node), INSTANCE_HANDLERS, d, ctx)
    return finish_instance(name, node.loc, d, g, ctx)


def finish_instance(
    name: str, loc: Location, d: Draft, g: GlobalDefs, ctx: Ctx
) -> InstanceConfig | None:
    """keepalived's `vrrp_complete_instance` defaults and quirks, as documented in man5."""
    at = _Where(name, loc, ctx)
    if "vrid" not in d:
        if "virtual_router_id" in _kws(at):  # given but invalid: already reported
            return None
        ctx.error(
            loc, f"vrrp_instance {name} has no virtual_router_id", "add: virtual_router_id <1..255>"
        )
        return None
    family = _family(d, ctx)
    version = _version(d, family, g, ctx, at)
    master = d.get("initial_state") is InitialState.MASTER
    priority: int = d.setdefault("priority", 255 if master else 100)
    strict: bool = d.setdefault("strict", g.strict)
    advert_int_cs = _advert_int_cs(d, version, ctx, at)
    _preemption(d, priority, strict, ctx, at)
    if d.get("auth") is not None and version == 3:
        ctx.warn(
            at("authentication"),
            "authentication is ignored with VRRPv3",
            "remove it, or use version 2",
        )
        d["auth"] = None
    if version == 2 and d.get("v3_checksum_as_v2"):
        ctx.warn(at("v3_checksum_as_v2"), "v3_checksum_as_v2 only applies to VRRPv3")
    _transport(d, family, g, ctx, at)
    if strict:
        _strict(d, priority, ctx, at)
    given = "virtual_ipaddress" in _kws(at)  # given but all invalid: already reported
    if not d.get("vips") and not d.pop("_no_vips_ok", False) and not given:
        hint = "add virtual_ipaddress, or no_virtual_ipaddress to silence this"
        (ctx.error if strict else ctx.warn)(
            loc, f"vrrp_instance {name} has no virtual_ipaddress", hint
        )
    _vmac(d, family, g, ctx, at)
    if d.get("interface") is None and not (d.get("unicast_peers") and d.get("src_ip")):
        ctx.error(loc, f"vrrp_instance {name} has no interface", "add: interface eth0")
    if advert_int_cs is None:
        return None
    garp = replace(g.garp, **d.pop("garp", {}))
    for flag in (
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "down_timer_adverts",
        "skip_check_adv_addr",
        "v3_checksum_as_v2",
        "notify_priority_changes",
    ):
        d.setdefault(flag, getattr(g, flag))  # per-instance values default to the global ones
    for key in [k for k in d if k.startswith("_") or k in ("version", "family")]:
        del d[key]
    tuples = {k: tuple(v) for k, v in d.items() if isinstance(v, list)}
    tuples["track_interfaces"] = tuple(
        TrackRef(t.name, t.weight or 0, t.reverse, t.location)
        for t in d.get("track_interfaces", ())
    )
    notify = NotifySpec(**d.pop("notify", {}))
    return InstanceConfig(
        **{**d, **tuples},
        name=name,
        family=family,
        version=version,
        advert_int_cs=advert_int_cs,
        garp=garp,
        notify=notify,
        location=loc,
    )


__all__ = ["INSTANCE_HANDLERS", "finish_instance", "parse_instance"]
