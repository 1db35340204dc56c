"""Value parsers and keyword-handler builders shared by the keepalived.conf sections.

A section is parsed into a *draft* (a plain dict of model field names) by a table of handlers,
one per keyword; the section's finaliser then applies keepalived's defaults and builds the frozen
model object. Every parser reports into `Problems` and returns None on a bad value, so one pass
finds every problem.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vrrpd.config.diag import Problems, did_you_mean
from vrrpd.config.lexer import Node, Token
from vrrpd.config.model import IPAddress, IPInterface
from vrrpd.errors import Location

Draft = dict[str, Any]
Handler = Callable[[Draft, Node, "Ctx"], None]
BOOL_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


class Ctx:
    """What a handler needs besides its node: the problem list and the keyword locations."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.locs: dict[tuple[str, str], Location] = {}

    def error(self, loc: Location, message: str, hint: str = "") -> None:
        self.problems.error(loc, message, hint)

    def warn(self, loc: Location, message: str, hint: str = "") -> None:
        self.problems.warn(loc, message, hint)

    # -- argument shape ---------------------------------------------------------------------
    def nargs(self, node: Node, lo: int, hi: int | None, usage: str) -> bool:
        """Check the argument count; extra arguments are a warning (keepalived ignores them)."""
        n = len(node.args)
        if n < lo:
            self.error(node.loc, f"'{node.name}' needs a value", f"usage: {node.name} {usage}")
            return False
        if hi is not None and n > hi:
            self.warn(
                node.args[hi].loc,
                f"extra words after '{node.name}' ignored",
                f"usage: {node.name} {usage}",
            )
        return True

    def block(self, node: Node) -> tuple[Node, ...]:
        if node.children is None:
            self.error(node.loc, f"'{node.name}' needs a {{ }} block")
            return ()
        return node.children

    # -- scalar values ----------------------------------------------------------------------
    def int_(self, tok: Token, lo: int, hi: int, what: str) -> int | None:
        try:
            value = int(tok.text, 10)
        except ValueError:
            self.error(tok.loc, f"{what} '{tok.text}' is not an integer")
            return None
        if not lo <= value <= hi:
            self.error(tok.loc, f"{what} {value} is out of range", f"use {lo}..{hi}")
            return None
        return value

    def seconds(self, tok: Token, lo: float, hi: float, what: str) -> float | None:
        """keepalived TIMER: decimal seconds, microsecond resolution."""
        try:
            value = float(tok.text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.error(tok.loc, f"{what} '{tok.text}' is not a number of seconds")
            return None
        if not lo <= value <= hi:
            self.error(tok.loc, f"{what} {tok.text} is out of range", f"use {lo:g}..{hi:g} s")
            return None
        return round(value, 6)

    def bool_(self, node: Node) -> bool | None:
        """keepalived BOOL: no value means true; else on|off|true|false|yes|no."""
        if not node.args:
            return True
        word = node.args[0].text.lower()
        if word not in BOOL_WORDS:
            self.error(
                node.args[0].loc,
                f"'{node.args[0].text}' is not a boolean",
                "use on|off|true|false|yes|no",
            )
            return None
        return BOOL_WORDS[word]

    def ip(self, tok: Token, what: str, family: int | None = None) -> IPAddress | None:
        try:
            addr = ipaddress.ip_address(tok.text)
        except ValueError:
            self.error(tok.loc, f"{what} '{tok.text}' is not an IP address")
            return None
        if family is not None and addr.version != family:
            self.error(tok.loc, f"{what} {addr} is not an IPv{family} address")
            return None
        return addr

    def iface(self, tok: Token, what: str) -> IPInterface | None:
        try:
            return ipaddress.ip_interface(tok.text)
        except ValueError:
            self.error(tok.loc, f"{what} '{tok.text}' is not an IP address[/prefix]")
            return None


def dispatch(
    owner: str, nodes: Iterable[Node], handlers: Mapping[str, Handler], draft: Draft, ctx: Ctx
) -> None:
    """Run each node's handler; an unknown keyword is a warning with a hint (keepalived skips)."""
    for node in nodes:
        handler = handlers.get(node.name)
        if handler is None:
            hint = did_you_mean(node.name, handlers)
            where = owner.split(":", 1)[0]
            ctx.warn(node.loc, f"unknown keyword '{node.name}' in {where} (ignored)", hint)
            continue
        ctx.locs[(owner, node.name)] = node.loc
        handler(draft, node, ctx)


# -- handler builders ------------------------------------------------------------------------
def int_kw(name: str, lo: int, hi: int) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 1, f"<{lo}..{hi}>"):
            value = ctx.int_(node.args[0], lo, hi, node.name)
            if value is not None:
                d[name] = value

    return handle


def seconds_kw(name: str, lo: float, hi: float) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 1, "<SECONDS>"):
            value = ctx.seconds(node.args[0], lo, hi, node.name)
            if value is not None:
                d[name] = value

    return handle


def bool_kw(name: str, invert: bool = False) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        ctx.nargs(node, 0, 1, "[on|off]")
        value = ctx.bool_(node)
        if value is not None:
            d[name] = value != invert

    return handle


def flag_kw(name: str, value: Any) -> Handler:
    """A keyword with no argument that sets a constant (`nopreempt`, `dont_track_primary`)."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        ctx.nargs(node, 0, 0, "")
        d[name] = value

    return handle


def str_kw(name: str) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 1, "<STRING>"):
            d[name] = node.args[0].text

    return handle


def ip_kw(name: str, family: int | None = None) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 1, "<IP>"):
            value = ctx.ip(node.args[0], node.name, family)
            if value is not None:
                d[name] = value

    return handle


def unsupported_kw(why: str = "not supported by vrrpd") -> Handler:
    """A keepalived keyword vrrpd accepts and ignores with a warning (keepalived would use it)."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        ctx.warn(node.loc, f"'{node.name}' is {why} (ignored)")

    return handle


def deprecated_kw(replacement: Handler, new_name: str) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        ctx.warn(node.loc, f"'{node.name}' is deprecated", f"use '{new_name}'")
        replacement(d, node, ctx)

    return handle


SHELL = "/bin/sh"


def split_command(text: str) -> tuple[str, ...]:
    """Split a script command as keepalived does: spaces split, quotes keep spaces inside.

    A command that starts with `<` (keepalived's sample `script "</dev/tcp/127.0.0.1/80"`, a
    TCP probe where /bin/sh is bash) runs as `/bin/sh -c COMMAND`: keepalived 2.2.7 gives it to
    the shell (measured: `</dev/null` exits 0, `</nonexistent` exits 2 as dash does), where
    every other command is executed directly.
    """
    if text.lstrip().startswith("<"):
        return (SHELL, "-c", text.strip())
    argv: list[str] = []
    cur, quote, have = "", "", False
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur += ch
        elif ch in "'\"":
            quote, have = ch, True
        elif ch.isspace():
            if cur or have:
                argv.append(cur)
            cur, have = "", False
        else:
            cur += ch
    if cur or have:
        argv.append(cur)
    return tuple(argv)


def join_command(argv: Iterable[str]) -> str:
    """The inverse of `split_command`: quote the words that need it."""
    out = []
    for word in argv:
        if word and not any(c.isspace() or c in "'\"" for c in word):
            out.append(word)
        elif "'" in word:
            out.append('"' + word + '"')
        else:
            out.append("'" + word + "'")
    return " ".join(out)
