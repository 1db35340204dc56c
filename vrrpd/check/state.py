"""The pure bookkeeping of one checker and one real server (keepalived `check_api.c`,
`ipwrapper.c`), kept free of IO so its timing rules can be tested with literal results.

A checker starts up unless `alpha`. After each attempt:
- success: the retry counter resets; the first result, or a change from down, reports UP;
  the next attempt is `delay_loop` later;
- failure while up (or before the first result): up to `retry` more attempts follow, each
  `delay_before_retry` later; when they are used up the checker reports DOWN and waits
  `delay_loop`. A failure while already down waits `delay_loop`.
A real server is alive while none of its checkers is down; its weight is the configured one
unless a `misc_dynamic` MISC_CHECK set another (exit status - 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vrrpd.config.lvsmodel import CheckerSpec


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt means: `report` "UP"/"DOWN" (logged), `changed` (the checker's state
    flipped), the delay before the next attempt, and how many retries were used up."""

    delay_s: float
    report: str | None = None
    changed: bool = False
    retries: int = 0


@dataclass(slots=True)
class CheckerState:
    """keepalived's `is_up`, `has_run` and `retry_it` for one checker."""

    spec: CheckerSpec
    is_up: bool = True
    has_run: bool = False
    retry_it: int = 0
    attempts: int = 0
    failures: int = 0
    last_detail: str = ""

    def __post_init__(self) -> None:
        self.is_up = not self.spec.alpha

    def record(self, ok: bool) -> Verdict:
        """Account one attempt's result; returns what it means."""
        self.attempts += 1
        first, spec = not self.has_run, self.spec
        self.has_run = True
        if ok:
            self.retry_it = 0
            changed = not self.is_up
            self.is_up = True
            report = "UP" if changed or first else None
            return Verdict(spec.delay_loop_s, report, changed)
        self.failures += 1
        if not self.is_up and not first:
            return Verdict(spec.delay_loop_s)
        if self.retry_it < spec.retry:
            self.retry_it += 1
            return Verdict(spec.delay_before_retry_s)
        retries, self.retry_it = self.retry_it, 0
        changed = self.is_up
        self.is_up = False
        return Verdict(spec.delay_loop_s, "DOWN", changed, retries)


@dataclass(slots=True)
class RealServerState:
    """The real server's view: alive while no checker is down; effective weight."""

    weight: int
    checkers: list[CheckerState] = field(default_factory=list)
    dynamic_weight: int | None = None

    @property
    def alive(self) -> bool:
        return all(c.is_up for c in self.checkers)

    @property
    def effective_weight(self) -> int:
        return self.weight if self.dynamic_weight is None else self.dynamic_weight


def dynamic_weight(rc: int, configured: int) -> int:
    """keepalived `misc_dynamic`: exit 0 keeps the configured weight, 2..255 sets rc - 2."""
    return rc - 2 if 2 <= rc <= 255 else configured
