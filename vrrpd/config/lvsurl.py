"""The `url {}` block of HTTP_GET and SSL_GET (man keepalived.conf "HTTP and SSL healthcheckers"):
`path`, `digest`, `status_code`, `virtualhost` and the regex keywords `regex`,
`regex_no_match`, `regex_options`, `regex_min_offset`, `regex_max_offset`, `regex_stack`.

keepalived matches with PCRE2; vrrpd with Python's `re`, so `regex_options` are PCRE2 option
names mapped onto `re` (`compile_regex`). An option `re` cannot express is a config error naming
it, never a silent difference. The pattern is compiled at load, so a syntax `re` does not know
(PCRE2-only constructs such as `(?<name>...)` or `\\Q...\\E`) is reported at its line too.
"""

from __future__ import annotations

import re
from dataclasses import replace

from vrrpd.config.diag import did_you_mean
from vrrpd.config.lexer import Node, Token
from vrrpd.config.lvsmodel import DEFAULT_STATUS_CODES, RegexSpec, UrlSpec
from vrrpd.config.values import Ctx, Draft, Handler, dispatch, flag_kw, int_kw, str_kw

MAX_OFFSET = 2**31 - 1
# PCRE2 options with a `re` flag of their own.
REGEX_FLAGS = {
    "caseless": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
}
# Options handled by how the subject is prepared (`utf`: UTF-8 text; `ucp`: Unicode classes;
# `firstline`: the match must start by the first newline), and options that cannot change
# whether a pattern matches at all: optimisation switches, callouts (none are registered),
# guards against syntax `re` has no form of (`\C`, `(*UTF)`, `(*UCP)`, verbs), `dupnames`
# (a pattern `re` compiles has no duplicate names), `no_auto_capture` and `ungreedy` (which
# groups capture and how much a quantifier takes do not decide whether, or where first, a
# match exists; the check only asks that), and `use_offset_limit` (regex_max_offset is always
# honoured).
REGEX_SUBJECT = frozenset({"utf", "ucp", "firstline"})
REGEX_NEUTRAL = frozenset({
    "auto_callout", "no_auto_possess", "no_dotstar_anchor", "no_start_optimize",
    "never_utf", "never_ucp", "never_backslash_c", "alt_verbnames", "dupnames",
    "no_auto_capture", "ungreedy", "use_offset_limit",
})  # fmt: skip
# keepalived's list of PCRE2 options that `re` cannot express.
REGEX_UNMAPPABLE = {
    "allow_empty_class": "re has no empty character class '[]'",
    "alt_bsux": "re has no JavaScript-style \\U, \\u and \\x",
    "alt_circumflex": "re's '^' never matches after a final newline",
    "dollar_endonly": "re's '$' also matches before a final newline; write \\Z instead",
    "match_unset_backref": "re's back-reference to an unset group never matches",
}
REGEX_OPTIONS = (*REGEX_FLAGS, *sorted(REGEX_SUBJECT | REGEX_NEUTRAL), *REGEX_UNMAPPABLE)


def regex_flags(options: tuple[str, ...]) -> int:
    """The `re` flags for the pattern and subject as `compile_regex` builds them: the subject
    is text (Latin-1, one character a byte, without `utf`), so `re.ASCII` keeps `\\w`, `\\d`
    and caseless matching to ASCII as PCRE2 does without `ucp`."""
    flags = 0 if "ucp" in options else re.ASCII
    for option in options:
        flags |= REGEX_FLAGS.get(option, 0)
    return flags


def compile_regex(spec: RegexSpec) -> re.Pattern[str]:
    """The compiled pattern. Without `utf` PCRE2 sees the pattern's bytes one by one; with
    Latin-1 the text has exactly those code points, so `re` sees them too."""
    text = spec.pattern if "utf" in spec.options else spec.pattern.encode().decode("latin-1")
    return re.compile(text, regex_flags(spec.options))


def _status_code(d: Draft, node: Node, ctx: Ctx) -> None:
    """`status_code 200 200-299 ...` (HTTP codes 100..599)."""
    if not ctx.nargs(node, 1, None, "<CODE|LOW-HIGH> ..."):
        return
    ranges: list[tuple[int, int]] = []
    for tok in node.args:
        lo_text, _, hi_text = tok.text.partition("-")
        lo = ctx.int_(replace(tok, text=lo_text), 100, 599, "status_code")
        hi = ctx.int_(replace(tok, text=hi_text), 100, 599, "status_code") if hi_text else lo
        if lo is None or hi is None:
            return
        if hi < lo:
            ctx.error(tok.loc, f"status_code range {tok.text} is empty", "write LOW-HIGH")
            return
        ranges.append((lo, hi))
    d["status_codes"] = tuple(ranges)


def _digest(d: Draft, node: Node, ctx: Ctx) -> None:
    """`digest HEX`: the MD5 of the body as `genhash` prints it (32 hex digits)."""
    if ctx.nargs(node, 1, 1, "<32 HEX DIGITS>"):
        text = node.args[0].text.lower()
        if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
            ctx.error(node.args[0].loc, f"digest '{node.args[0].text}' is not an MD5 hex digest",
                      "use the 32 hex digits genhash prints")  # fmt: skip
        else:
            d["digest"] = text


def _regex(d: Draft, node: Node, ctx: Ctx) -> None:
    """`regex STRING`: several words are one pattern joined by single spaces (quote the
    pattern to keep its spaces, and single-quote it to keep its backslashes: double quotes
    take escapes such as \\n)."""
    if ctx.nargs(node, 1, None, "<REGEX>"):
        d["regex"] = " ".join(a.text for a in node.args)
        d["regex_at"] = node.args[0]


def _regex_options(d: Draft, node: Node, ctx: Ctx) -> None:
    """`regex_options OPTION ...`: PCRE2 option names, in lower case as keepalived lists them."""
    if not ctx.nargs(node, 1, None, "<OPTION> ..."):
        return
    options: list[str] = []
    for tok in node.args:
        name = tok.text.lower()
        if name in REGEX_UNMAPPABLE:
            ctx.error(tok.loc, f"regex_options '{tok.text}' cannot be mapped onto Python's re",
                      REGEX_UNMAPPABLE[name])  # fmt: skip
        elif name not in REGEX_OPTIONS:
            hint = did_you_mean(name, REGEX_OPTIONS) or f"use {', '.join(REGEX_OPTIONS[:9])}, ..."
            ctx.error(tok.loc, f"unknown regex_options '{tok.text}'", hint)
        elif name not in options:
            options.append(name)
    d["regex_options"] = tuple(options)


def _regex_stack(d: Draft, node: Node, ctx: Ctx) -> None:
    """`regex_stack START MAX` (bytes): PCRE2's JIT stack; validated and kept, not used."""
    if not ctx.nargs(node, 2, 2, "<START> <MAX>"):
        return
    start = ctx.int_(node.args[0], 1, MAX_OFFSET, "regex_stack start")
    most = ctx.int_(node.args[1], 1, MAX_OFFSET, "regex_stack max")
    if start is not None and most is not None:
        if most < start:
            ctx.error(node.args[1].loc, f"regex_stack max {most} is below its start {start}")
        else:
            d["regex_stack"] = (start, most)


URL_HANDLERS: dict[str, Handler] = {
    "path": str_kw("path"),
    "digest": _digest,
    "status_code": _status_code,
    "virtualhost": str_kw("virtualhost"),
    "regex": _regex,
    "regex_no_match": flag_kw("regex_no_match", True),
    "regex_options": _regex_options,
    "regex_stack": _regex_stack,
    "regex_min_offset": int_kw("regex_min_offset", 0, MAX_OFFSET),
    "regex_max_offset": int_kw("regex_max_offset", 0, MAX_OFFSET),
}
REGEX_KEYS = ("regex_no_match", "regex_options", "regex_stack", "regex_min_offset",
              "regex_max_offset")  # fmt: skip


def url_kw(d: Draft, node: Node, ctx: Ctx) -> None:
    """`url { path ...; ... }`: one url draft appended to the checker's `urls`."""
    url: Draft = {}
    dispatch("url", ctx.block(node), URL_HANDLERS, url, ctx)
    if "path" not in url:
        ctx.error(node.loc, "url has no 'path'", "add: path /")
        return
    url["location"] = node.loc
    if "regex" in url:
        url["regex"] = _regex_spec(url, url.pop("regex_at"), ctx)
    elif given := [k for k in REGEX_KEYS if k in url]:
        ctx.warn(node.loc, f"url has '{given[0]}' but no 'regex' (ignored)", "add: regex PATTERN")
    d.setdefault("urls", []).append(url)


def _regex_spec(url: Draft, at: Token, ctx: Ctx) -> RegexSpec | None:
    spec = RegexSpec(
        pattern=url["regex"],
        no_match=bool(url.get("regex_no_match")),
        options=url.get("regex_options", ()),
        min_offset=url.get("regex_min_offset", 0),
        max_offset=url.get("regex_max_offset"),
        stack=url.get("regex_stack"),
    )
    if spec.max_offset is not None and spec.max_offset < spec.min_offset:
        ctx.error(at.loc, f"regex_max_offset {spec.max_offset} is below regex_min_offset "
                  f"{spec.min_offset}")  # fmt: skip
        return None
    try:
        compile_regex(spec)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        ctx.error(at.loc, f"regex '{spec.pattern}' is not valid for Python's re: {exc.msg}{where}",
                  "PCRE2-only syntax has no re form; (?P<name>...) names a group")  # fmt: skip
        return None
    return spec


def url_spec(url: Draft, virtualhost: str | None) -> UrlSpec:
    """A url draft into its `UrlSpec`; `virtualhost` is the inherited Host."""
    return UrlSpec(
        path=url["path"],
        digest=url.get("digest"),
        status_codes=url.get("status_codes", DEFAULT_STATUS_CODES),
        virtualhost=url.get("virtualhost", virtualhost),
        regex=url.get("regex"),
        location=url["location"],
    )


__all__ = ["REGEX_OPTIONS", "compile_regex", "regex_flags", "url_kw", "url_spec"]
