"""keepalived `vrrp_instance NAME {}` keywords (man keepalived.conf "VRRP instance(s)"): one
handler per keyword, filling a draft that `instance.finish_instance` completes.
"""

from __future__ import annotations

from vrrpd.config.addresses import route_block, vip_block
from vrrpd.config.globaldefs import garp_kw
from vrrpd.config.lexer import Node
from vrrpd.config.model import (
    Auth,
    AuthType,
    InitialState,
    UnicastPeer,
)
from vrrpd.config.trackers import NOTIFY_HANDLERS, TRACK_HANDLERS
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    deprecated_kw,
    flag_kw,
    int_kw,
    ip_kw,
    seconds_kw,
    str_kw,
    unsupported_kw,
)

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
