"""Collecting problems in one pass, exabgp-style: every diagnostic has a place and maybe a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from vrrpd.errors import Location, Problem, Severity


class Problems:
    """An append-only list of `Problem`s shared by one load; `fatal` marks "cannot run at all"."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.fatal = False

    def error(self, loc: Location, message: str, hint: str = "") -> None:
        self.items.append(Problem(loc, message, Severity.ERROR, hint))

    def warn(self, loc: Location, message: str, hint: str = "") -> None:
        self.items.append(Problem(loc, message, Severity.WARNING, hint))

    def fatal_error(self, loc: Location, message: str, hint: str = "") -> None:
        self.fatal = True
        self.error(loc, message, hint)

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A "did you mean 'x'?" hint for an unknown keyword, or "" when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f"did you mean '{close[0]}'?" if close else ""


def render_problems(problems: Iterable[Problem], source: object) -> str:
    """exabgp-style report: `file:line:col: severity: message`, the line, a caret, the hint.

    `source` is anything with `read_text(path)`; unreadable files just lose the excerpt.
    """
    cache: dict[str, list[str]] = {}
    out: list[str] = []
    for problem in problems:
        loc = problem.location
        out.append(f"{loc}: {problem.severity.value}: {problem.message}")
        if loc.path not in cache:
            try:
                cache[loc.path] = source.read_text(loc.path).splitlines()  # type: ignore[attr-defined]
            except Exception:  # any failure only costs the excerpt
                cache[loc.path] = []
        lines = cache[loc.path]
        if 1 <= loc.line <= len(lines) and loc.col >= 1:
            text = lines[loc.line - 1].expandtabs(1)
            out.append(f"    {text}")
            out.append(f"    {' ' * (loc.col - 1)}^")
        if problem.hint:
            out.append(f"    hint: {problem.hint}")
    return "\n".join(out)
