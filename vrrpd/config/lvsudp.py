"""UDP_CHECK's own keywords (man keepalived.conf "UDP healthchecker"): `payload HEX_STR`,
`require_reply [HEX_STR]`, `min_reply_length`, `max_reply_length`.

keepalived's HEX_STR is "quite free format": each space-separated group is read two hex digits
a byte from the left, and a lone last digit is a byte of its own (`Ab12f 3 456` is
`AB 12 0F 03 45 06`). In `require_reply`, `x`/`X` stands for a nibble the reply may have any
value in. Both are kept normalised (`AB120F034506`, `4x0A`) so the model stays plain text.
"""

from __future__ import annotations

from vrrpd.config.lexer import Node
from vrrpd.config.lvsmodel import DEFAULT_MAX_REPLY_LENGTH, UdpParams
from vrrpd.config.values import Ctx, Draft, Handler, int_kw
from vrrpd.errors import Location

HEX_DIGITS = "0123456789ABCDEF"
MAX_UDP_PAYLOAD = 65507  # the most one IPv4 UDP datagram carries


def parse_hex(node: Node, ctx: Ctx, wildcards: bool) -> str | None:
    """The arguments of `node` as a normalised hex string; None (reported) when invalid."""
    out: list[str] = []
    allowed = HEX_DIGITS + ("X" if wildcards else "")
    for tok in node.args:
        for group in tok.text.split():
            upper = group.upper()
            bad = next((c for c in upper if c not in allowed), None)
            if bad is not None:
                what = "a hex digit or x" if wildcards else "a hex digit"
                ctx.error(tok.loc, f"{node.name}: '{group}' has '{bad}', which is not {what}",
                          "write bytes as hex digits, e.g. 0a 1B ff")  # fmt: skip
                return None
            pairs = [upper[i : i + 2] for i in range(0, len(upper), 2)]
            out.extend(p if len(p) == 2 else "0" + p for p in pairs)
    text = "".join(out).replace("X", "x")
    if len(text) // 2 > MAX_UDP_PAYLOAD:
        ctx.error(node.loc, f"{node.name} is longer than {MAX_UDP_PAYLOAD} bytes")
        return None
    return text


def _payload(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, None, "<HEX_STR>"):
        payload = parse_hex(node, ctx, wildcards=False)
        if payload is not None:
            d["payload"] = payload


def _require_reply(d: Draft, node: Node, ctx: Ctx) -> None:
    """`require_reply [HEX_STR]`: a reply must come (and start like HEX_STR)."""
    d["require_reply"] = True
    if node.args:
        reply = parse_hex(node, ctx, wildcards=True)
        if reply is not None:
            d["reply"] = reply


UDP_HANDLERS: dict[str, Handler] = {
    "payload": _payload,
    "require_reply": _require_reply,
    "min_reply_length": int_kw("min_reply_length", 0, MAX_UDP_PAYLOAD),
    "max_reply_length": int_kw("max_reply_length", 0, MAX_UDP_PAYLOAD),
}


def udp_params(d: Draft, loc: Location, ctx: Ctx) -> UdpParams:
    """The UDP_CHECK draft into `UdpParams`; lengths without `require_reply` are unused."""
    lo = d.get("min_reply_length", 0)
    hi = d.get("max_reply_length", DEFAULT_MAX_REPLY_LENGTH)
    if hi < lo:
        ctx.error(loc, f"UDP_CHECK max_reply_length {hi} is below min_reply_length {lo}")
    elif ("min_reply_length" in d or "max_reply_length" in d) and not d.get("require_reply"):
        ctx.warn(loc, "UDP_CHECK reply lengths are only checked with require_reply",
                 "add: require_reply")  # fmt: skip
    return UdpParams(
        payload=d.get("payload"),
        require_reply=bool(d.get("require_reply")),
        reply=d.get("reply"),
        min_reply_length=lo,
        max_reply_length=hi,
    )


__all__ = ["UDP_HANDLERS", "parse_hex", "udp_params"]
