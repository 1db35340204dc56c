"""Value parsers for keepalived's LVS keywords (man keepalived.conf "Virtual server(s)",
"Virtual server group(s)"): `lvs_sched`, `lvs_method NAT|DR|TUN [type ...]`, `protocol`,
`persistence_timeout [N]`, `IP [PORT]` heads, and `virtual_server_group` entries
(`IP[-LAST] [PORT]`, `IP/PREFIX [PORT]`, `fwmark N [inet|inet6]`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from vrrpd.config.diag import did_you_mean
from vrrpd.config.lexer import Node, Token
from vrrpd.config.lvsmodel import (
    SCHEDULERS,
    Forwarding,
    LvsMethod,
    LvsProtocol,
    VirtualServerGroupSpec,
    VsgEntry,
)
from vrrpd.config.model import IPAddress
from vrrpd.config.trackers import parse_command
from vrrpd.config.values import Ctx, Draft, Handler

DEFAULT_PERSISTENCE_S = 360
MAX_PERSISTENCE_S = 86400 * 31
TUNNEL_TYPES = ("ipip", "gue", "gre")
TUNNEL_CSUM = ("nocsum", "csum", "remcsum")


def sched_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "|".join(SCHEDULERS)):
        word = node.args[0].text.lower()
        if word not in SCHEDULERS:
            hint = did_you_mean(word, SCHEDULERS) or f"use one of {', '.join(SCHEDULERS)}"
            ctx.error(node.args[0].loc, f"unknown {node.name} '{node.args[0].text}'", hint)
        else:
            d["scheduler"] = word


def parse_forwarding(node: Node, ctx: Ctx) -> Forwarding | None:
    """`NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`."""
    if not ctx.nargs(node, 1, None, "NAT|DR|TUN [type ipip|gue port N|gre] [csum]"):
        return None
    word = node.args[0].text.upper()
    if word == "FULLNAT":
        ctx.error(node.args[0].loc, f"{node.name} FULLNAT is not supported",
                  "keepalived and mainline IPVS have NAT, DR and TUN only")  # fmt: skip
        return None
    if word not in LvsMethod.__members__:
        ctx.error(node.args[0].loc, f"unknown {node.name} '{node.args[0].text}'",
                  "use NAT, DR or TUN")  # fmt: skip
        return None
    method = LvsMethod(word)
    opts = list(node.args[1:])
    if opts and method is not LvsMethod.TUN:
        ctx.warn(opts[0].loc, f"extra words after '{node.name} {word}' ignored")
        opts = []
    return _tunnel(method, opts, node, ctx)


def _tunnel(method: LvsMethod, opts: list[Token], node: Node, ctx: Ctx) -> Forwarding | None:
    kind: str | None = None
    port: int | None = None
    csum: str | None = None
    while opts:
        tok = opts.pop(0)
        if tok.text == "type" and opts:
            kind = opts.pop(0).text.lower()
            if kind not in TUNNEL_TYPES:
                ctx.error(tok.loc, f"unknown tunnel type '{kind}'", "use ipip, gue or gre")
                return None
        elif tok.text == "port" and opts:
            port = ctx.int_(opts.pop(0), 1, 65535, "tunnel port")
        elif tok.text.lower() in TUNNEL_CSUM:
            csum = tok.text.lower()
        else:
            ctx.error(tok.loc, f"unexpected '{tok.text}' in {node.name}",
                      "usage: TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]")  # fmt: skip
            return None
    if (kind == "gue") != (port is not None):
        ctx.error(node.loc, "a tunnel port goes with 'type gue' (and gue needs one)")
        return None
    if (csum is not None and kind not in ("gue", "gre")) or (kind == "gre" and csum == "remcsum"):
        ctx.error(node.loc, f"checksum option '{csum}' needs type gue (gre: csum|nocsum)")
        return None
    return Forwarding(method, kind, port, csum)


def parsed_kw(field: str, parse: Callable[[Node, Ctx], object | None]) -> Handler:
    """A keyword whose whole line `parse` turns into one value (None: already reported)."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        value = parse(node, ctx)
        if value is not None:
            d[field] = value

    return handle


def forwarding_kw(field: str) -> Handler:
    return parsed_kw(field, parse_forwarding)


def protocol_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "TCP|UDP|SCTP"):
        word = node.args[0].text.upper()
        if word not in LvsProtocol.__members__:
            ctx.error(node.args[0].loc, f"unknown protocol '{node.args[0].text}'",
                      "use TCP, UDP or SCTP")  # fmt: skip
        else:
            d["protocol"] = LvsProtocol(word)


def persistence_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    """`persistence_timeout [SECONDS]`: 360 when given without a value (man5)."""
    ctx.nargs(node, 0, 1, "[<SECONDS>]")
    if not node.args:
        d["persistence_timeout_s"] = DEFAULT_PERSISTENCE_S
        return
    value = ctx.int_(node.args[0], 1, MAX_PERSISTENCE_S, "persistence_timeout")
    if value is not None:
        d["persistence_timeout_s"] = value


def command_kw(field: str) -> Handler:
    return parsed_kw(field, parse_command)


def ip_port(node: Node, ctx: Ctx, what: str) -> tuple[IPAddress, int | None] | None:
    """`IP [PORT]` as the arguments of `node`."""
    if not ctx.nargs(node, 1, 2, "<IP> [<PORT>]"):
        return None
    addr = ctx.ip(node.args[0], what)
    port = ctx.int_(node.args[1], 0, 65535, f"{what} port") if len(node.args) > 1 else None
    if addr is None or (len(node.args) > 1 and port is None):
        return None
    return addr, port


def sorry_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    got = ip_port(node, ctx, "sorry_server")
    if got is not None:
        d["_sorry"] = (got, node.loc)


def ip_family_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "inet|inet6"):
        word = node.args[0].text
        if word not in ("inet", "inet6"):
            ctx.error(node.args[0].loc, f"unknown ip_family '{word}'", "use inet or inet6")
        else:
            d["_ip_family"] = 6 if word == "inet6" else 4


def parse_vsg(node: Node, ctx: Ctx) -> VirtualServerGroupSpec | None:
    """`virtual_server_group NAME { ENTRY ... }`."""
    if not ctx.nargs(node, 1, 1, "NAME { ... }"):
        return None
    lines = ctx.block(node)
    entries = [e for e in (_vsg_entry(c, ctx) for c in lines) if e is not None]
    if not lines:
        ctx.warn(node.loc, f"virtual_server_group {node.args[0].text} has no entries")
    return VirtualServerGroupSpec(node.args[0].text, tuple(entries), node.loc)


def _vsg_entry(line: Node, ctx: Ctx) -> VsgEntry | None:
    if line.name == "fwmark":
        if not ctx.nargs(line, 1, 2, "fwmark <N> [inet|inet6]"):
            return None
        mark = ctx.int_(line.args[0], 1, 2**32 - 1, "fwmark")
        fam = line.args[1].text if len(line.args) > 1 else "inet"
        if fam not in ("inet", "inet6"):
            ctx.error(line.args[1].loc, f"unknown address family '{fam}'", "use inet or inet6")
            return None
        family = 6 if fam == "inet6" else 4
        return None if mark is None else VsgEntry(fwmark=mark, family=family, location=line.loc)
    span = _range(line.key, ctx)
    if len(line.args) > 1:
        ctx.warn(line.args[1].loc, "extra words after a virtual_server_group entry ignored")
    port = ctx.int_(line.args[0], 0, 65535, "port") if line.args else 0
    if span is None or port is None:
        return None
    return VsgEntry(span[0], span[1], port, None, span[0].version, line.loc)


def _range(tok: Token, ctx: Ctx) -> tuple[IPAddress, IPAddress] | None:
    """`IP`, `IP/PREFIX`, `A.B.C.D-E` (last octet; last hex group for IPv6) or `IP-IP`."""
    text = tok.text
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return net.network_address, net.broadcast_address
        head, dash, tail = text.partition("-")
        first = ipaddress.ip_address(head)
        if not dash:
            return first, first
        try:
            last = ipaddress.ip_address(tail)
        except ValueError:
            bits, base = (8, 10) if first.version == 4 else (16, 16)
            low = int(tail, base)
            if not 0 <= low < 2**bits:
                raise ValueError(tail) from None
            last = ipaddress.ip_address((int(first) >> bits << bits) | low)
    except ValueError:
        ctx.error(tok.loc, f"virtual_server_group entry '{text}' is not an address or range",
                  "use IP, IP/PREFIX, A.B.C.D-E or IP-IP")  # fmt: skip
        return None
    if last.version != first.version or last < first:  # type: ignore[operator]
        ctx.error(tok.loc, f"virtual_server_group range '{text}' is empty or mixes families")
        return None
    return first, last
