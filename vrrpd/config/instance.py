"""keepalived `vrrp_instance NAME {}` (man keepalived.conf "VRRP instance(s)"), with keepalived's
defaults and quirks applied by `finish_instance`.
"""

from __future__ import annotations

from dataclasses import replace

from vrrpd.config.addresses import route_block, vip_block
from vrrpd.config.globaldefs import garp_kw
from vrrpd.config.lexer import Node
from vrrpd.config.model import (
    NOWHERE,
    Auth,
    AuthType,
    GarpSpec,
    GlobalDefs,
    InitialState,
    InstanceConfig,
    NotifySpec,
    TrackRef,
    UnicastPeer,
    VipSpec,
    VmacSpec,
)
from vrrpd.config.trackers import NOTIFY_HANDLERS, TRACK_HANDLERS
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    deprecated_kw,
    dispatch,
    flag_kw,
    int_kw,
    ip_kw,
    seconds_kw,
    str_kw,
    unsupported_kw,
)
from vrrpd.errors import Location
from vrrpd.proto.constants import vmac

MAC_CHARS = frozenset("0123456789abcdefABCDEF:")


def _state(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "MASTER|BACKUP"):
        word = node.args[0].text.upper()
        if word not in ("MASTER", "BACKUP"):
            ctx.error(
                node.args[0].loc, f"unknown state '{node.args[0].text}'", "use MASTER or BACKUP"
            )
        else:
            d["initial_state"] = InitialState(word)


def _authentication(d: Draft, node: Node, ctx: Ctx) -> None:
    """`authentication { auth_type PASS|AH; auth_pass SECRET }` (VRRPv2 only)."""
    kind, secret = None, None
    for child in ctx.block(node):
        if child.name == "auth_type" and ctx.nargs(child, 1, 1, "PASS|AH"):
            word = child.args[0].text.upper()
            if word not in ("PASS", "AH"):
                ctx.error(
                    child.args[0].loc, f"unknown auth_type '{child.args[0].text}'", "use PASS or AH"
                )
                return
            kind = AuthType(word)
        elif child.name == "auth_pass" and ctx.nargs(child, 1, 1, "SECRET"):
            secret = child.args[0].text.encode()
            if len(secret) > 8:
                ctx.warn(child.args[0].loc, "auth_pass is longer than 8 bytes; truncated")
        elif child.name not in ("auth_type", "auth_pass"):
            ctx.warn(child.loc, f"unknown keyword '{child.name}' in authentication (ignored)")
    if kind is None:
        ctx.error(node.loc, "authentication needs an auth_type", "add: auth_type PASS")
        return
    d["auth"] = Auth(kind, (secret or b"")[:8].ljust(8, b"\0"))


def _unicast_peer(d: Draft, node: Node, ctx: Ctx) -> None:
    """`unicast_peer { IP [min_ttl N] [max_ttl N] ... }`."""
    peers = d.setdefault("unicast_peers", [])
    for child in ctx.block(node):
        addr = ctx.ip(child.key, "unicast_peer")
        ttl: dict[str, int | None] = {"min_ttl": None, "max_ttl": None}
        args = list(child.args)
        while args:
            tok = args.pop(0)
            if tok.text in ttl and args:
                ttl[tok.text] = ctx.int_(args.pop(0), 0, 255, tok.text)
            else:
                ctx.error(
                    tok.loc,
                    f"unexpected '{tok.text}' in unicast_peer",
                    "usage: IP [min_ttl N] [max_ttl N]",
                )
        if addr is not None:
            if ttl["min_ttl"] is not None or ttl["max_ttl"] is not None:
                d["_ttl_check"] = True  # min/max_ttl turn the source check on (man5)
            peers.append(UnicastPeer(addr, ttl["min_ttl"], ttl["max_ttl"]))


def _use_vmac(d: Draft, node: Node, ctx: Ctx) -> None:
    """`use_vmac [[name] IFNAME] [MAC]`."""
    words = [a for a in node.args if a.text not in ("netlink_notify_msg",)]
    if words and words[0].text == "name":
        words = words[1:]
    vmac: dict[str, str | None] = {"name": None, "mac": None}
    for tok in words:
        if tok.text.count(":") == 5 and MAC_CHARS.issuperset(tok.text):
            vmac["mac"] = tok.text.lower()
        elif vmac["name"] is None:
            vmac["name"] = tok.text
        else:
            ctx.error(
                tok.loc,
                f"unexpected '{tok.text}' in use_vmac",
                "usage: use_vmac [[name] IFNAME] [MAC]",
            )
    d["_vmac"] = vmac


def _preempt(value: bool) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        ctx.nargs(node, 0, 0, "")
        d["preempt"] = value
        d["_nopreempt_loc"] = None if value else node.loc

    return handle


def _no_vips(d: Draft, node: Node, ctx: Ctx) -> None:
    d["_no_vips_ok"] = True


INSTANCE_HANDLERS: dict[str, Handler] = {
    "state": _state,
    "interface": str_kw("interface"),
    "virtual_router_id": int_kw("vrid", 1, 255),
    "priority": int_kw("priority", 1, 255),
    "advert_int": seconds_kw("_advert_int_s", 0.001, 255),
    "version": int_kw("version", 2, 3),
    "authentication": _authentication,
    "virtual_ipaddress": vip_block("vips", "virtual_ipaddress"),
    "virtual_ipaddress_excluded": vip_block("excluded_vips", "virtual_ipaddress_excluded"),
    "no_virtual_ipaddress": _no_vips,
    "virtual_routes": route_block("virtual_routes", "virtual_routes"),
    "virtual_rules": route_block("virtual_rules", "virtual_rules", rules=True),
    "unicast_src_ip": ip_kw("src_ip"),
    "mcast_src_ip": ip_kw("src_ip"),
    "unicast_peer": _unicast_peer,
    "unicast_ttl": int_kw("unicast_ttl", 0, 255),
    "mcast_dst_ip": ip_kw("mcast_group"),
    "check_unicast_src": bool_kw("check_unicast_src"),
    "nopreempt": _preempt(False),
    "preempt": _preempt(True),
    "preempt_delay": seconds_kw("preempt_delay_s", 0, 1000),
    "accept": flag_kw("accept", True),
    "no_accept": flag_kw("accept", False),
    "dont_track_primary": flag_kw("track_primary", False),
    **TRACK_HANDLERS,
    "use_vmac": _use_vmac,
    "vmac_xmit_base": flag_kw("_vmac_xmit_base", True),
    "garp_master_delay": garp_kw("master_delay_s", "s"),
    "garp_master_repeat": garp_kw("master_repeat", "n"),
    "garp_master_refresh": garp_kw("master_refresh_s", "s"),
    "garp_master_refresh_repeat": garp_kw("master_refresh_repeat", "n"),
    "garp_lower_prio_delay": garp_kw("lower_prio_delay_s", "s"),
    "garp_lower_prio_repeat": garp_kw("lower_prio_repeat", "n"),
    "lower_prio_no_advert": bool_kw("lower_prio_no_advert"),
    "higher_prio_send_advert": bool_kw("higher_prio_send_advert"),
    "down_timer_adverts": int_kw("down_timer_adverts", 1, 100),
    "skip_check_adv_addr": bool_kw("skip_check_adv_addr"),
    "v3_checksum_as_v2": bool_kw("v3_checksum_as_v2"),
    "strict_mode": bool_kw("strict"),
    **NOTIFY_HANDLERS,
    "notify_priority_changes": bool_kw("notify_priority_changes"),
    "smtp_alert": bool_kw("smtp_alert"),
    "promote_secondaries": flag_kw("promote_secondaries", True),
    "native_ipv6": deprecated_kw(flag_kw("_native_ipv6", True), "an IPv6 virtual_ipaddress"),
    **dict.fromkeys(
        (
            "debug",
            "linkbeat_use_polling",
            "kernel_rx_buf_size",
            "vrf",
            "use_ipvlan",
            "use_vmac_addr",
            "old_unicast_checksum",
            "track_src_ip",
            "unicast_fault_no_peer",
            "timer_expired_backup",
            "owner_ignore_adverts",
            "garp_extra_if",
            "auth_hmac",
            "lvs_sync_daemon_interface",
        ),
        unsupported_kw(),
    ),
}


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


__all__ = ["INSTANCE_HANDLERS", "NOWHERE", "GarpSpec", "finish_instance", "parse_instance"]
