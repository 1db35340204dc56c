"""keepalived.conf lexing: one text line into tokens, and token lines into a keyword tree.

Implements man keepalived.conf "DESCRIPTION": `#` and `!` start a comment anywhere outside
quotes; `"..."` and `'...'` quote (quotes removed, inner whitespace kept; double quotes take
shell-like escapes `\\n \\t \\xHH \\NNN \\cC`); `{` and `}` open and close blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrrpd.config.diag import Problems
from vrrpd.errors import Location

# Stand-ins for `${_HASH}` / `${_BANG}`: they must survive comment stripping as literal text.
HASH_MARK = "\ue000"
BANG_MARK = "\ue001"
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a config line; `quoted` tokens are never `{`, `}` or keywords' syntax."""

    text: str
    loc: Location
    quoted: bool = False

    def is_brace(self, brace: str) -> bool:
        return not self.quoted and self.text == brace


@dataclass(frozen=True, slots=True)
class Node:
    """`keyword args... [{ children }]`; list blocks (VIPs, peers) have one child per line."""

    key: Token
    args: tuple[Token, ...] = ()
    children: tuple[Node, ...] | None = None

    @property
    def loc(self) -> Location:
        return self.key.loc

    @property
    def name(self) -> str:
        return self.key.text

    def words(self) -> list[str]:
        return [self.key.text, *(a.text for a in self.args)]


def strip_comment(text: str) -> str:
    """Drop a `#` or `!` comment that is not inside quotes."""
    quote, i = "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1  # an escaped character never ends the string
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or text[i - 1].isspace() or text[i - 1] in "{}"):
            quote = ch  # quotes only open at the start of a word, as in `tokenize`
        elif ch in "#!":
            return text[:i]
        i += 1
    return text


def _unmark(text: str) -> str:
    return text.replace(HASH_MARK, "#").replace(BANG_MARK, "!")


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape starting after the backslash at `i`; return (chars, next index)."""
    if i >= len(text):
        return "\\", i
    ch = text[i]
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch], i + 1
    if ch == "x":
        digits = ""
        while len(digits) < 2 and i + 1 + len(digits) < len(text):
            nxt = text[i + 1 + len(digits)]
            if nxt not in "0123456789abcdefABCDEF":
                break
            digits += nxt
        return (chr(int(digits, 16)), i + 1 + len(digits)) if digits else ("x", i + 1)
    if ch in "01234567":
        digits = ch
        while (
            len(digits) < 3 and i + len(digits) < len(text) and text[i + len(digits)] in "01234567"
        ):
            digits += text[i + len(digits)]
        return chr(int(digits, 8) & 0xFF), i + len(digits)
    if ch == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    return ch, i + 1


def _quoted(text: str, start: int, loc: Location, problems: Problems) -> tuple[str, int]:
    """Read a quoted string whose opening quote is at `start`; return (value, next index)."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and quote == '"':
            decoded, i = _escape(text, i + 1)
            out.append(decoded)
            continue
        out.append(ch)
        i += 1
    problems.error(loc, f"unterminated {quote} quote", "close the string on the same line")
    return "".join(out), i


def tokenize(text: str, path: str, line: int, problems: Problems, col0: int = 1) -> list[Token]:
    """Split one (macro-expanded) line into tokens; `col0` is the column of `text[0]`."""
    text = strip_comment(text)
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        loc = Location(path, line, col0 + i)
        if ch in "{}":
            tokens.append(Token(ch, loc))
            i += 1
        elif ch in "\"'":
            value, i = _quoted(text, i, loc, problems)
            tokens.append(Token(_unmark(value), loc, quoted=True))
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "{}":
                i += 1
            tokens.append(Token(_unmark(text[start:i]), loc))
    return tokens


class _Open:
    """A node under construction."""

    def __init__(self, key: Token) -> None:
        self.key = key
        self.args: list[Token] = []
        self.children: list[_Open] | None = None
        self.brace: Token | None = None

    def freeze(self) -> Node:
        kids = None if self.children is None else tuple(c.freeze() for c in self.children)
        return Node(self.key, tuple(self.args), kids)


def build_tree(lines: list[list[Token]], problems: Problems) -> list[Node]:
    """Group token lines into nodes: a line is one node; `{ ... }` nests (across lines too)."""
    root = _Open(Token("<root>", Location("<root>", 0, 0)))
    root.children = []
    stack = [root]
    for tokens in lines:
        current: _Open | None = None
        for tok in tokens:
            parent = stack[-1]
            assert parent.children is not None
            if tok.is_brace("{"):
                target = current
                if target is None and parent.children and parent.children[-1].children is None:
                    target = parent.children[-1]  # keyword on one line, `{` on the next
                if target is None:
                    problems.error(tok.loc, "'{' without a keyword before it")
                    target = _Open(tok)
                    parent.children.append(target)
                target.children, target.brace = [], tok
                stack.append(target)
                current = None
            elif tok.is_brace("}"):
                if len(stack) == 1:
                    problems.error(tok.loc, "unmatched '}'", "remove it or add the missing '{'")
                else:
                    stack.pop()
                current = None
            elif current is None:
                current = _Open(tok)
                parent.children.append(current)
            else:
                current.args.append(tok)
    for unclosed in stack[1:]:
        loc = unclosed.brace.loc if unclosed.brace else unclosed.key.loc
        problems.error(loc, f"block '{unclosed.key.text}' is never closed", "add the missing '}'")
    return [c.freeze() for c in root.children or []]
