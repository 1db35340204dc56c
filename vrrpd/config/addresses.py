"""Address, route and rule lines (`virtual_ipaddress`, `virtual_routes`, `virtual_rules` and the
`static_*` blocks), following man keepalived.conf "VRRP instance(s)" and `ip route`/`ip rule`.
"""

from __future__ import annotations

import ipaddress

from vrrpd.config.diag import did_you_mean
from vrrpd.config.lexer import Node, Token
from vrrpd.config.model import RouteSpec, RuleSpec, VipSpec
from vrrpd.config.values import Ctx, Draft, Handler

SCOPES = frozenset({"global", "site", "link", "host", "nowhere"})
_VIP_VALUE_OPTS = frozenset(
    {"brd", "dev", "scope", "label", "peer", "preferred_lft", "track_group"}
)
_VIP_FLAGS = frozenset(
    {"no_track", "-nodad", "home", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac"}
)
ROUTE_TYPES = frozenset(
    {
        "unicast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "nat",
    }
)
_ROUTE_VALUE_OPTS = frozenset(
    {
        "src",
        "via",
        "gw",
        "or",
        "dev",
        "oif",
        "table",
        "metric",
        "priority",
        "preference",
        "scope",
        "proto",
        "protocol",
        "mtu",
        "advmss",
        "realms",
        "realm",
        "tos",
        "dsfield",
        "pref",
        "expires",
        "initcwnd",
        "initrwnd",
        "rtt",
        "rttvar",
        "reordering",
        "window",
        "cwnd",
        "ssthresh",
        "features",
        "quickack",
        "congctl",
        "hoplimit",
        "fastopen_no_cookie",
        "rto_min",
        "to",
        "encap",
    }
)
_ROUTE_FLAGS = frozenset({"onlink", "pervasive", "append", "inet", "inet6", "-4", "-6"})
_RULE_VALUE_OPTS = frozenset(
    {
        "from",
        "to",
        "table",
        "lookup",
        "preference",
        "priority",
        "order",
        "pref",
        "prio",
        "fwmark",
        "iif",
        "dev",
        "oif",
        "tos",
        "dsfield",
        "realms",
        "goto",
        "suppress_prefixlength",
        "suppress_ifgroup",
        "uidrange",
        "ipproto",
        "sport",
        "dport",
        "protocol",
        "type",
        "tun_id",
        "l3mdev",
        "nat",
        "map-to",
    }
)
_RULE_FLAGS = frozenset(
    {
        "not",
        "nop",
        "l3mdev",
        "inet",
        "inet6",
        "-4",
        "-6",
        "unicast",
        "blackhole",
        "unreachable",
        "prohibit",
    }
)


def _hint(word: str, choices: frozenset[str]) -> str:
    return did_you_mean(word, choices) or "see man keepalived.conf for the line syntax"


def _options(
    toks: list[Token], values: frozenset[str], flags: frozenset[str], what: str, ctx: Ctx
) -> dict[str, Token] | None:
    """Parse `word [value]` options; an unknown word makes the whole line invalid."""
    opts: dict[str, Token] = {}
    i = 0
    while i < len(toks):
        word = toks[i].text
        if word in flags:
            opts[word] = toks[i]
            i += 1
        elif word in values:
            if i + 1 >= len(toks):
                ctx.error(toks[i].loc, f"'{word}' in {what} needs a value")
                return None
            opts[word] = toks[i + 1]
            i += 2
        else:
            ctx.error(
                toks[i].loc, f"unknown option '{word}' in {what}", _hint(word, values | flags)
            )
            return None
    return opts


def parse_vip(node: Node, ctx: Ctx, what: str) -> VipSpec | None:
    """`IP[/PREFIX] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP] [no_track] [-nodad]
    [preferred_lft N|forever] [home] [mngtmpaddr] [noprefixroute] [autojoin]`."""
    addr = ctx.iface(node.key, what)
    opts = _options(list(node.args), _VIP_VALUE_OPTS, _VIP_FLAGS, what, ctx)
    if addr is None or opts is None:
        return None
    if "/" not in node.key.text:  # keepalived's default prefix is the host prefix
        addr = ipaddress.ip_interface(f"{addr.ip}/{addr.max_prefixlen}")
    kw: Draft = {
        "address": addr,
        "location": node.loc,
        "track": "no_track" not in opts,
        "dad": "-nodad" in opts,
    }
    kw.update({f: True for f in ("home", "mngtmpaddr", "noprefixroute", "autojoin") if f in opts})
    kw.update(
        {k: opts[k].text for k in ("dev", "label", "track_group", "brd", "scope") if k in opts}
    )
    if not _vip_values(kw, opts, addr.version, ctx):
        return None
    if "use_vmac" in opts:
        ctx.warn(opts["use_vmac"].loc, "per-address 'use_vmac' is not supported (ignored)")
    if addr.version == 6:  # keepalived ignores scope and label on IPv6 addresses
        for key in ("scope", "label"):
            if kw.pop(key, None) is not None:
                ctx.warn(opts[key].loc, f"'{key}' is ignored for IPv6 addresses")
        if "preferred_lft" not in opts and addr.network.prefixlen == 128:
            kw["preferred_lft"] = 0  # keepalived deprecates /128 VIPs so they are never a source
    return VipSpec(**kw)


def _vip_values(kw: Draft, opts: dict[str, Token], version: int, ctx: Ctx) -> bool:
    """Check `brd`, `scope`, `peer` and `preferred_lft`; False if any is invalid."""
    brd = opts.get("brd")
    if brd is not None and brd.text not in ("+", "-") and ctx.ip(brd, "brd", version) is None:
        return False
    scope = opts.get("scope")
    if scope is not None and scope.text not in SCOPES and not scope.text.isdigit():
        ctx.error(scope.loc, f"unknown scope '{scope.text}'", _hint(scope.text, SCOPES))
        return False
    if "peer" in opts:
        kw["peer"] = ctx.ip(opts["peer"], "peer", version)
        if kw["peer"] is None:
            return False
    lft = opts.get("preferred_lft")
    if lft is not None and lft.text != "forever":
        kw["preferred_lft"] = ctx.int_(lft, 0, 0xFFFFFFFF, "preferred_lft")
        if kw["preferred_lft"] is None:
            return False
    return True


def _family_of(text: str) -> int | None:
    if text in ("default", "all"):
        return None
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError:
        return None


def parse_route(node: Node, ctx: Ctx, what: str) -> RouteSpec | None:
    """One `ip route` line: `[TYPE] [to] PREFIX [src IP] [via|gw IP] [dev IF] [table T] ...`."""
    toks = [t for t in (node.key, *node.args) if t.text != "no_track"]
    track = len(toks) == len(node.args) + 1
    d: Draft = {"args": tuple(t.text for t in toks), "track": track, "location": node.loc}
    if toks and toks[0].text in ROUTE_TYPES:
        d["type"] = toks.pop(0).text
    if "nexthop" in d["args"]:  # multipath: keep the words, validate only the head
        toks = toks[: next(i for i, t in enumerate(toks) if t.text == "nexthop")]
    dst = None
    rest: list[Token] = []
    for i, tok in enumerate(toks):
        prev = toks[i - 1].text if i else ""
        if (
            dst is None
            and tok.text not in _ROUTE_VALUE_OPTS | _ROUTE_FLAGS
            and (prev not in _ROUTE_VALUE_OPTS or prev == "to")
        ):
            dst = tok
        elif tok.text != "to" or dst is not None:
            rest.append(tok)
    opts = _options(rest, _ROUTE_VALUE_OPTS - {"to"}, _ROUTE_FLAGS, what, ctx)
    if opts is None:
        return None
    if dst is None and "nexthop" not in d["args"]:
        ctx.error(node.loc, f"{what} has no destination", "e.g. 192.0.2.0/24 via 198.51.100.1")
        return None
    if dst is not None:
        if dst.text != "default" and _family_of(dst.text) is None:
            ctx.error(dst.loc, f"{what} destination '{dst.text}' is not an IP prefix")
            return None
        d["dst"] = dst.text
    return _route_fields(d, opts, ctx)


def _route_fields(d: Draft, opts: dict[str, Token], ctx: Ctx) -> RouteSpec | None:
    for key, field in (("via", "via"), ("gw", "via"), ("src", "src")):
        if key in opts:
            addr = ctx.ip(opts[key], key)
            if addr is None:
                return None
            d[field] = addr
    for key, field in (
        ("dev", "dev"),
        ("oif", "dev"),
        ("table", "table"),
        ("scope", "scope"),
        ("proto", "protocol"),
        ("protocol", "protocol"),
    ):
        if key in opts:
            d[field] = opts[key].text
    for key in ("metric", "priority", "preference"):
        if key in opts:
            metric = ctx.int_(opts[key], 0, 0xFFFFFFFF, key)
            if metric is None:
                return None
            d["metric"] = metric
    fams = {f for f in (_family_of(d.get("dst", "default")),) if f}
    fams |= {a.version for a in (d.get("via"), d.get("src")) if a is not None}
    if "inet6" in opts or "-6" in opts:
        fams.add(6)
    if len(fams) > 1:
        ctx.error(d["location"], "route mixes IPv4 and IPv6 addresses")
        return None
    d["family"] = fams.pop() if fams else 4
    return RouteSpec(**d)


def parse_rule(node: Node, ctx: Ctx, what: str) -> RuleSpec | None:
    """One `ip rule` line: `[not] [from P] [to P] [fwmark M] [iif I] [oif O] [table T] ...`."""
    toks = [t for t in (node.key, *node.args) if t.text != "no_track"]
    track = len(toks) == len(node.args) + 1
    opts = _options(toks, _RULE_VALUE_OPTS, _RULE_FLAGS, what, ctx)
    if opts is None:
        return None
    d: Draft = {"args": tuple(t.text for t in toks), "track": track, "location": node.loc}
    fams: set[int] = set()
    for key, field in (("from", "from_"), ("to", "to")):
        if key in opts:
            text = opts[key].text
            fam = _family_of(text)
            if fam is None and text not in ("all", "default"):
                ctx.error(opts[key].loc, f"{what} '{key}' address '{text}' is not an IP prefix")
                return None
            fams |= {fam} if fam else set()
            d[field] = text
    for keys, field in (
        (("table", "lookup"), "table"),
        (("fwmark",), "fwmark"),
        (("iif", "dev"), "iif"),
        (("oif",), "oif"),
        (("type",), "action"),
    ):
        for key in keys:
            if key in opts:
                d[field] = opts[key].text
    if not _rule_extras(d, opts, ctx):
        return None
    if "inet6" in opts or "-6" in opts:
        fams.add(6)
    if len(fams) > 1:
        ctx.error(node.loc, "rule mixes IPv4 and IPv6 addresses")
        return None
    d["family"] = fams.pop() if fams else 4
    return RuleSpec(**d)


def vip_block(field: str, what: str) -> Handler:
    """Handler for `virtual_ipaddress {}` style blocks: appends to `draft[field]`."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        items = d.setdefault(field, [])
        for child in ctx.block(node):
            vip = parse_vip(child, ctx, what)
            if vip is not None:
                items.append(vip)

    return handle


def route_block(field: str, what: str, rules: bool = False) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        items = d.setdefault(field, [])
        for child in ctx.block(node):
            item = parse_rule(child, ctx, what) if rules else parse_route(child, ctx, what)
            if item is not None:
                items.append(item)

    return handle


def _rule_extras(d: Draft, opts: dict[str, Token], ctx: Ctx) -> bool:
    for key in ("preference", "priority", "order", "pref", "prio"):
        if key in opts:
            d["preference"] = ctx.int_(opts[key], 0, 0xFFFFFFFF, key)
            if d["preference"] is None:
                return False
    for action in ("blackhole", "unreachable", "prohibit", "nop"):
        if action in opts:
            d["action"] = action
    return True
