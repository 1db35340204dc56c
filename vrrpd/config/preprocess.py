"""keepalived.conf line preprocessing: include, `@ID` lines, `$NAME` macros, `~SEQ`/`~LST`.

Implements man keepalived.conf "ADVANCED CONFIGURATION" and `include`:
- `include PATTERN` (and `includer/m/w/b/a`) is recognised before any other processing; the
  pattern takes globs and csh brace expansion and is relative to the including file.
- `@ID line` keeps the line only when the config id is ID; `@^ID line` only when it is not.
- `$NAME=value` defines a macro (a trailing `\\` continues it on the next line); `$NAME` (followed
  by whitespace) and `${NAME}` use it; undefined macros are left as literal text.
- `~SEQ(var, [start,] [step,] end)`, `~SEQx(...)` and `~LST(var, v1, ...)` repeat the line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from vrrpd.config.diag import Problems
from vrrpd.config.lexer import BANG_MARK, HASH_MARK, Token, strip_comment, tokenize
from vrrpd.config.source import Source, SourceError
from vrrpd.errors import Location

INCLUDE_WORDS = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})
MAX_INCLUDE_DEPTH = 32
MAX_LINES = 200_000  # a runaway ~SEQ or include fan-out is an error, not an out-of-memory
MAX_MACRO_ROUNDS = 16
_DEFINE_RE = re.compile(r"\s*\$([A-Za-z_]\w*)=(.*)\Z", re.DOTALL)
_USE_RE = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)(?=\s|\Z)")
_SEQ_RE = re.compile(r"~(SEQx?|LST)\(([^)]*)\)\s*")
_GLOB_CHARS = frozenset("*?[")


class Preprocessor:
    """Turns a file (and what it includes) into token lines for `lexer.build_tree`."""

    def __init__(self, source: Source, config_id: str, problems: Problems) -> None:
        self.source = source
        self.config_id = config_id
        self.problems = problems
        self.macros: dict[str, str] = {}
        self.files: list[str] = []
        self.lines: list[list[Token]] = []
        self._stack: list[str] = []

    def run(self, path: str) -> list[list[Token]]:
        """Read the main file; a missing or unreadable main file is fatal (exit code 4)."""
        text = self._read(path, None)
        if text is not None:
            self._process(path, text)
        return self.lines

    def _read(self, path: str, at: Location | None) -> str | None:
        loc = at or Location(path, 0, 0)
        try:
            text = self.source.read_text(path)
        except FileNotFoundError:
            report = self.problems.fatal_error if at is None else self.problems.error
            report(loc, f"configuration file {path} does not exist")
            return None
        except (SourceError, OSError, ValueError) as exc:
            report = self.problems.fatal_error if at is None else self.problems.error
            report(loc, str(exc))
            return None
        self.files.append(path)
        return text

    def _process(self, path: str, text: str) -> None:
        self._stack.append(path)
        raw = text.splitlines()
        i = 0
        while i < len(raw):
            lineno, line = i + 1, raw[i]
            i += 1
            define = _DEFINE_RE.match(line)
            if define and not line.lstrip().startswith("include"):
                value = define.group(2)
                while value.rstrip().endswith("\\") and i < len(raw):
                    value = value.rstrip()[:-1] + "\n" + raw[i]
                    i += 1
                if value.rstrip().endswith("\\"):
                    value = value.rstrip()[:-1]
                self.macros[define.group(1)] = "\n".join(
                    strip_comment(v) for v in value.split("\n")
                ).strip()
                continue
            self._line(path, lineno, line)
        self._stack.pop()

    def _line(self, path: str, lineno: int, line: str) -> None:
        stripped = line.lstrip()
        col0 = len(line) - len(stripped) + 1
        first = stripped.split(None, 1)[0] if stripped else ""
        if first in INCLUDE_WORDS:
            self._include(path, self._include_tokens(stripped, path, lineno, col0))
            return
        if stripped.startswith("@"):
            cond, rest = [*stripped.split(None, 1), ""][:2]
            negate = cond.startswith("@^")
            wanted = cond[2:] if negate else cond[1:]
            if (wanted == self.config_id) == negate:
                return
            col0 += len(stripped) - len(rest.lstrip())
            stripped = rest.lstrip()
        loc = Location(path, lineno, col0)
        for text, bindings in self._sequences(stripped, loc):
            expanded = self._expand(text, loc, bindings, path)
            for part in expanded.split("\n"):
                if len(self.lines) >= MAX_LINES:
                    self.problems.fatal_error(loc, f"more than {MAX_LINES} lines after expansion")
                    return
                col = col0 if part == stripped else loc.col
                tokens = tokenize(part, path, lineno, self.problems, col)
                if tokens:
                    self.lines.append(tokens)

    def _include_tokens(self, line: str, path: str, lineno: int, col0: int) -> list[Token]:
        """`include` takes the rest of the line as one pattern (braces are brace expansion)."""
        word = line.split(None, 1)[0]
        rest = strip_comment(line[len(word) :])
        start = len(word) + len(rest) - len(rest.lstrip())
        if rest.strip()[:1] in ("'", '"'):
            return tokenize(line, path, lineno, self.problems, col0)
        tokens = [Token(word, Location(path, lineno, col0))]
        for part in rest.split():
            start = line.index(part, start)
            tokens.append(Token(part, Location(path, lineno, col0 + start)))
            start += len(part)
        return tokens

    def _include(self, path: str, tokens: list[Token]) -> None:
        """`include PATTERN`: globs and braces, relative to the including file; loops detected."""
        word = tokens[0]
        if len(tokens) < 2:
            self.problems.error(word.loc, f"'{word.text}' needs a file name or pattern")
            return
        if len(tokens) > 2:
            self.problems.warn(tokens[2].loc, f"extra words after '{word.text}' ignored")
        pattern = tokens[1].text
        if not posixpath.isabs(pattern):
            pattern = posixpath.join(posixpath.dirname(path), pattern)
        matches: list[str] = []
        for alternative in brace_expand(pattern):
            if _GLOB_CHARS.isdisjoint(alternative):
                found = [alternative] if self.source.exists(alternative) else []
            else:
                found = self.source.glob(alternative)
            matches.extend(m for m in found if m not in matches)
        if not matches:
            self.problems.warn(tokens[1].loc, f"include '{tokens[1].text}' matched no files")
        for match in matches:
            self._include_one(posixpath.normpath(match), tokens[1].loc)

    def _include_one(self, target: str, loc: Location) -> None:
        if target in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(target) :], target])
            self.problems.error(loc, f"include loop: {chain}", "remove one of the includes")
            return
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self.problems.error(loc, f"includes nested more than {MAX_INCLUDE_DEPTH} deep")
            return
        text = self._read(target, loc)
        if text is not None:
            self._process(target, text)

    def _sequences(self, text: str, loc: Location) -> Iterator[tuple[str, dict[str, str]]]:
        """Expand leading `~SEQ(...)`/`~SEQx(...)`/`~LST(...)` into (rest of line, bindings)."""
        match = _SEQ_RE.match(text)
        if not match:
            yield text, {}
            return
        kind, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        values = _sequence_values(kind, args)
        if isinstance(values, str):
            self.problems.error(loc, f"invalid ~{kind}({match.group(2)}): {values}")
            return
        for value in values:
            for rest, bindings in self._sequences(text[match.end() :], loc):
                yield rest, {args[0]: value, **bindings}

    def _expand(self, text: str, loc: Location, bindings: dict[str, str], path: str) -> str:
        """Expand `$NAME` and `${NAME}` recursively; undefined names stay as text."""
        macros = {**self.macros, **bindings}
        builtins = {
            "_PWD": posixpath.dirname(path) or ".",
            "_INSTANCE": self.config_id,
            "_HASH": HASH_MARK,
            "_BANG": BANG_MARK,
        }

        def use(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            value = macros.get(name, builtins.get(name))
            return m.group(0) if value is None else value

        for _ in range(MAX_MACRO_ROUNDS):
            expanded = _USE_RE.sub(use, text)
            if expanded == text:
                return text
            text = expanded
            if len(text) > 1_000_000:
                break
        self.problems.error(loc, "macro expansion does not terminate", "a macro refers to itself")
        return ""


def _sequence_values(kind: str, args: list[str]) -> list[str] | str:
    """The values of a `~SEQ`/`~SEQx`/`~LST`, or a reason string when the arguments are bad."""
    if not args or not re.fullmatch(r"[A-Za-z_]\w*", args[0]):
        return "the first argument must be a variable name"
    if kind == "LST":
        return args[1:] if len(args) > 1 else "needs at least one value"
    try:
        nums = [int(a, 0) for a in args[1:]]
    except ValueError:
        return "start, step and end must be integers"
    if len(nums) == 1:
        end = nums[0]
        start, step = (1 if end > 0 else -1), 1 if end > 0 else -1
    elif len(nums) == 2:
        start, end = nums
        step = 1 if end >= start else -1
    elif len(nums) == 3:
        start, step, end = nums
    else:
        return "expected (var, [start,] [step,] end)"
    if step == 0:
        return "step must not be 0"
    count = (end - start) // step + 1
    if count > 100_000:
        return f"{count} repetitions is too many"
    fmt = "{:x}" if kind == "SEQx" else "{:d}"
    return [fmt.format(v) for v in range(start, end + (1 if step > 0 else -1), step)]


def brace_expand(pattern: str, limit: int = 1024) -> list[str]:
    """csh brace expansion, `a{b,c{d,e}}f` -> `abf acdf acef`, used by `include`."""
    depth, start = 0, -1
    for i, ch in enumerate(pattern):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                parts = _split_top(pattern[start + 1 : i])
                if len(parts) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for part in parts:
                    out.extend(brace_expand(head + part + tail, limit))
                    if len(out) >= limit:
                        return out[:limit]
                return out
    return [pattern]


def _split_top(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    parts.append(cur)
    return parts
