"""The YAML front-end (docs/configuration-yaml.md): YAML -> the keepalived keyword tree -> `Config`.

The YAML document is translated into the same `lexer.Node` tree the keepalived.conf front-end
builds, with each token located at its YAML scalar, and then goes through the very same section
parsers, defaults, quirks and validation. So both front-ends produce the same model by
construction; the YAML schema only renames (positive booleans such as `preempt: false` for
`nopreempt`; durations in seconds named `*_s`) and restructures (mappings for named blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from vrrpd.config.diag import Problems, did_you_mean
from vrrpd.config.keepalived import build_config
from vrrpd.config.lexer import Node, Token
from vrrpd.config.model import Config
from vrrpd.config.source import Source, SourceError
from vrrpd.config.values import join_command
from vrrpd.config.yamlschema import (
    BOOL_TAG,
    CHECKERS,
    GLOBAL,
    KEEPALIVED_HINTS,
    NAMED,
    NULL_TAG,
    SSL,
    STATIC,
    TOP_KEYS,
    VIP_FLAGS,
    VIP_VALUES,
    VIRTUAL_SERVER,
    Spec,
    YNode,
)
from vrrpd.errors import Location


class _Translator:
    """Walks composed YAML nodes (which keep their line and column) into keyword nodes."""

    def __init__(self, path: str, problems: Problems) -> None:
        self.path, self.problems = path, problems

    def loc(self, node: YNode) -> Location:
        return Location(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def tok(self, node: YNode, text: str | None = None, quoted: bool = False) -> Token:
        return Token(node.value if text is None else text, self.loc(node), quoted)

    def mapping(self, node: YNode, what: str) -> list[tuple[YNode, YNode]]:
        if not isinstance(node, yaml.MappingNode):
            self.problems.error(self.loc(node), f"{what} must be a mapping")
            return []
        seen: dict[str, Location] = {}
        pairs: list[tuple[YNode, YNode]] = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                self.problems.error(self.loc(key), f"keys in {what} must be plain words")
                continue
            if key.value in seen:
                self.problems.error(
                    self.loc(key),
                    f"duplicate key '{key.value}' in {what}",
                    f"first given at {seen[key.value]}",
                )
                continue
            seen[key.value] = self.loc(key)
            pairs.append((key, value))
        return pairs

    def seq(self, node: YNode, what: str) -> list[YNode]:
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problems.error(self.loc(node), f"{what} must be a list")
            return []
        return list(node.value)

    def scalar(self, node: YNode, what: str) -> Token | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problems.error(self.loc(node), f"{what} must be a single value")
            return None
        return self.tok(node)

    def document(self, root: YNode) -> list[Node]:
        out: list[Node] = []
        for key, value in self.mapping(root, "the document"):
            name = key.value
            if name == "global_defs":
                out.append(Node(self.tok(key), (), tuple(self.block(value, GLOBAL, name))))
            elif name in NAMED:
                keyword, schema = NAMED[name]
                for item, body in self.mapping(value, name):
                    kids = tuple(self.block(body, schema, keyword))
                    out.append(Node(self.tok(item, keyword), (self.tok(item),), kids))
            elif name in STATIC:
                items = [self.item(i, STATIC[name], name) for i in self.seq(value, name)]
                out.append(Node(self.tok(key), (), tuple(n for n in items if n is not None)))
            elif name == "virtual_servers":
                out.extend(self._servers(("servers", "virtual_server", VIRTUAL_SERVER),
                                         self.tok(key), value, {}))  # fmt: skip
            elif name == "ssl":
                out.append(Node(self.tok(key, "SSL"), (), tuple(self.block(value, SSL, "ssl"))))
            elif name == "virtual_server_groups":
                for item, body in self.mapping(value, name):
                    lines = [self.item(i, "line", item.value) for i in self.seq(body, name)]
                    kids = tuple(n for n in lines if n is not None)
                    out.append(
                        Node(self.tok(item, "virtual_server_group"), (self.tok(item),), kids)
                    )
            else:
                self.unknown(key, TOP_KEYS, "the document")
        return out

    def unknown(self, key: YNode, choices: Any, what: str) -> None:
        hint = KEEPALIVED_HINTS.get(key.value) or did_you_mean(key.value, choices)
        if not hint and f"{key.value}_s" in choices:
            hint = f"use '{key.value}_s' (seconds)"
        self.problems.warn(self.loc(key), f"unknown key '{key.value}' in {what} (ignored)", hint)

    def block(self, node: YNode, schema: dict[str, Spec], what: str) -> list[Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return []
        pairs = self.mapping(node, what)
        siblings = {k.value: v for k, v in pairs}
        out: list[Node] = []
        for key, value in pairs:
            spec = schema.get(key.value)
            if spec is None:
                self.unknown(key, schema, what)
            elif spec[0] != "skip":
                out.extend(self.entry(spec, key, value, siblings))
        return out

    def entry(self, spec: Spec, key: YNode, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        handler: Callable[..., list[Node]] = getattr(self, f"_{spec[0]}")
        return handler(spec, self.tok(key, spec[1]) if spec[1] else self.tok(key), value, sib)

    # -- one handler per spec kind: (spec, keyword token, value, sibling values) -> nodes ----
    def boolean(self, node: YNode, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG:
            return node.value.lower() in ("yes", "true", "on", "y")
        self.problems.error(self.loc(node), f"{what} must be true or false")
        return None

    def words(self, node: YNode) -> tuple[Token, ...]:
        """A plain scalar's words, each at its own column."""
        out, text, pos = [], str(node.value), 0
        for word in text.split():
            pos = text.index(word, pos)
            loc = self.loc(node)
            out.append(Token(word, Location(loc.path, loc.line, loc.col + pos)))
            pos += len(word)
        return tuple(out)

    def _kw(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        if isinstance(value, yaml.ScalarNode) and value.tag == NULL_TAG:
            return [Node(kw)]
        tok = self.scalar(value, kw.text)
        if tok is None:
            return []
        text = tok.text.lower() if value.tag == BOOL_TAG else tok.text
        return [Node(kw, (Token(text, tok.loc, quoted=True),))]

    def _flag(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        flag = self.boolean(value, kw.text)
        word = None if flag is None else spec[1] if flag else spec[2]
        return [Node(Token(word, kw.loc))] if word else []

    def command(self, value: YNode, what: str) -> Token | None:
        if isinstance(value, yaml.SequenceNode):
            argv = [self.scalar(v, what) for v in value.value]
            if any(a is None for a in argv):
                return None
            return Token(join_command(a.text for a in argv if a), self.loc(value), quoted=True)
        tok = self.scalar(value, what)
        return None if tok is None else Token(tok.text, tok.loc, quoted=True)

    def _cmd(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        if not isinstance(value, yaml.MappingNode):
            cmd = self.command(value, kw.text)
            return [Node(kw, (cmd,))] if cmd else []
        fields = {k.value: v for k, v in self.mapping(value, kw.text)}
        cmd = self.command(fields["command"], kw.text) if "command" in fields else None
        if cmd is None:
            self.problems.error(self.loc(value), f"{kw.text} needs a 'command'")
            return []
        extra = [self.scalar(fields[k], k) for k in ("user", "group") if k in fields]
        return [Node(kw, (cmd, *(t for t in extra if t)))]

    def _list(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        items = [self.item(i, spec[2], kw.text) for i in self.seq(value, kw.text)]
        return [Node(kw, (), tuple(n for n in items if n is not None))]

    def _block(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        return [Node(kw, (), tuple(self.block(value, spec[2], kw.text)))]

    def _fifo(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        if not isinstance(value, yaml.MappingNode):
            return self._kw(spec, kw, value, sib)
        fields = {k.value: v for k, v in self.mapping(value, kw.text)}
        args = [self.scalar(fields[k], k) for k in ("path", "user", "group") if k in fields]
        out = [Node(kw, tuple(a for a in args if a))]
        if "script" in fields:
            out += self._cmd(spec, Token(f"{kw.text}_script", kw.loc), fields["script"], sib)
        return out

    def _with(self, kw: Token, value: YNode, extra: list[Token]) -> list[Node]:
        tok = self.scalar(value, kw.text)
        return [Node(kw, (tok, *extra))] if tok else []

    def _user(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        group = self.scalar(sib[spec[2]], spec[2]) if spec[2] in sib else None
        return self._with(kw, value, [group] if group else [])

    def _weight(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        rev = "reverse" in sib and self.boolean(sib["reverse"], "reverse")
        return self._with(kw, value, [Token("reverse", kw.loc)] if rev else [])

    def _init_file(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        over = "init_overwrite" in sib and self.boolean(sib["init_overwrite"], "init_overwrite")
        return self._with(kw, value, [Token("overwrite", kw.loc)] if over else [])

    def _process(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        args = (
            [self.scalar(a, "args") for a in self.seq(sib["args"], "args")] if "args" in sib else []
        )
        return self._with(kw, value, [a for a in args if a])

    def _vmac(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        if not isinstance(value, yaml.MappingNode):
            return [Node(kw)] if self.boolean(value, kw.text) else []
        fields = {k.value: v for k, v in self.mapping(value, kw.text)}
        args = [self.scalar(fields[k], k) for k in ("name", "mac") if k in fields]
        out = [Node(kw, tuple(a for a in args if a))]
        if "xmit_base" in fields and self.boolean(fields["xmit_base"], "xmit_base"):
            out.append(Node(Token("vmac_xmit_base", kw.loc)))
        return out

    # -- LVS: virtual/real servers as lists of mappings, checkers by `type` --------------------
    def _words(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        """A keyword whose value is several words: a string or a list of words."""
        if isinstance(value, yaml.SequenceNode):
            toks = [self.scalar(v, kw.text) for v in value.value]
            return [Node(kw, tuple(t for t in toks if t))]
        if isinstance(value, yaml.ScalarNode) and value.tag != NULL_TAG:
            return [Node(kw, self.words(value))]
        self.problems.error(self.loc(value), f"{kw.text} must be a string or a list of words")
        return []

    def _flags(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        toks = [self.scalar(v, kw.text) for v in self.seq(value, kw.text)]
        return [Node(t) for t in toks if t]

    def _blocks(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        return [
            Node(kw, (), tuple(self.block(v, spec[2], kw.text))) for v in self.seq(value, kw.text)
        ]

    def _servers(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        """`virtual_servers` / `real_servers`: `{address, port}`, `{fwmark}` or `{group}` heads."""
        out: list[Node] = []
        for item in self.seq(value, kw.text):
            fields = {k.value: v for k, v in self.mapping(item, spec[1])}
            head: list[Token] = []
            for name in ("fwmark", "group"):
                if name in fields and (tok := self.scalar(fields[name], name)):
                    head = [self.tok(fields[name], name), tok]
            if not head and "address" in fields:
                toks = [self.scalar(fields[k], k) for k in ("address", "port") if k in fields]
                head = [t for t in toks if t]
            if not head:
                self.problems.error(
                    self.loc(item), f"a {spec[1]} needs 'address' (or fwmark/group)"
                )
                continue
            out.append(Node(Token(spec[1], self.loc(item)), tuple(head),
                            tuple(self.block(item, spec[2], spec[1]))))  # fmt: skip
        return out

    def _checkers(self, spec: Spec, kw: Token, value: YNode, sib: dict[str, YNode]) -> list[Node]:
        """`checkers: [{type: TCP_CHECK, ...}]` -> one checker block each."""
        out: list[Node] = []
        for item in self.seq(value, kw.text):
            fields = {k.value: v for k, v in self.mapping(item, "a checker")}
            kind = self.scalar(fields["type"], "type") if "type" in fields else None
            if kind is None or kind.text not in CHECKERS:
                hint = did_you_mean(kind.text, CHECKERS) if kind else ""
                self.problems.error(self.loc(item), "a checker needs 'type' (one of "
                                    f"{', '.join(CHECKERS)})", hint)  # fmt: skip
                continue
            schema = {"type": ("skip",), **CHECKERS[kind.text]}
            out.append(Node(kind, (), tuple(self.block(item, schema, kind.text))))
        return out

    # -- list items -------------------------------------------------------------------------
    def item(self, node: YNode, kind: str, what: str) -> Node | None:
        """One list entry as a keepalived line: a string, or a mapping of its options."""
        if isinstance(node, yaml.ScalarNode):
            words = self.words(node) if kind in ("vip", "line") else (self.tok(node),)
            return Node(words[0], words[1:]) if words else None
        if kind == "line" and isinstance(node, yaml.SequenceNode):
            toks = [self.scalar(w, what) for w in node.value]
            words = tuple(t for t in toks if t)
            return Node(words[0], words[1:]) if words else None
        if not isinstance(node, yaml.MappingNode):
            self.problems.error(self.loc(node), f"an entry of {what} must be a string or mapping")
            return None
        fields = {k.value: (k, v) for k, v in self.mapping(node, what)}
        head = {"vip": "address", "peer": "address", "track": "name", "word": "name"}.get(kind)
        if kind == "line":
            head = "rule" if "rule" in fields else "route"
        if head not in fields:
            self.problems.error(self.loc(node), f"an entry of {what} needs '{head}'")
            return None
        first = self.words(fields[head][1]) if kind == "line" else (self.tok(fields.pop(head)[1]),)
        fields.pop(head, None)
        args = list(first[1:])
        for name, (key, value) in fields.items():
            args.extend(self.option(kind, name, key, value, what))
        return Node(first[0], tuple(args)) if first else None

    def option(self, kind: str, name: str, key: YNode, value: YNode, what: str) -> list[Token]:
        """One mapping field of a list entry as the words keepalived.conf would use."""
        simple = {"vip": VIP_VALUES, "peer": ("min_ttl", "max_ttl"), "track": ("weight",)}
        if name in simple.get(kind, ()):
            tok = self.scalar(value, name)
            return [self.tok(key), tok] if tok else []
        if kind == "vip" and name in VIP_FLAGS:
            return [self.tok(key, VIP_FLAGS[name])] if self.boolean(value, name) else []
        if name == "track" and kind in ("vip", "line"):
            flag = self.boolean(value, name)
            return [self.tok(key, "no_track")] if flag is False else []
        if name == "reverse" and kind == "track":
            return [self.tok(key, "reverse")] if self.boolean(value, name) else []
        self.unknown(key, (*simple.get(kind, ()), *VIP_FLAGS, "track", "reverse"), what)
        return []


def parse_yaml_text(text: str, path: str, problems: Problems) -> Config | None:
    """A YAML document into a validated `Config`; YAML syntax errors are located problems."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 0, 0)
        problems.fatal_error(loc, f"YAML syntax error: {exc.problem or exc.context}")
        return None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        problems.fatal_error(Location(path, 0, 0), f"YAML error: {exc}")
        return None
    if root is None:
        problems.warn(Location(path, 1, 1), "the YAML document is empty")
        return build_config([], problems, (path,))
    nodes = _Translator(path, problems).document(root)
    return build_config(nodes, problems, (path,))


def parse_yaml_file(path: str, source: Source, problems: Problems) -> Config | None:
    """Read `path` through `source`; a missing or unreadable file is fatal (exit code 4)."""
    try:
        text = source.read_text(path)
    except FileNotFoundError:
        problems.fatal_error(Location(path, 0, 0), f"configuration file {path} does not exist")
        return None
    except (SourceError, OSError, ValueError) as exc:
        problems.fatal_error(Location(path, 0, 0), str(exc))
        return None
    return parse_yaml_text(text, path, problems)
