"""The pure bookkeeping of one checker and one real server (keepalived `check_api.c`,
`ipwrapper.c`), kept free of IO so its timing rules can be tested with literal results.

A checker starts up unless `alpha`. After each attempt:
- success: the retry counter resets; the first result, or a change from down, reports UP;
  the next attempt is `delay_loop` later;
- failure while up (or before the first result): up to `retry` more attempts follow, each
  `delay_before_retry` later; when they are used up the checker reports DOWN and waits
  `delay_loop`. A failure while already down waits `delay_loop`.
A FILE_CHECK has no attempts: its state follows the value of its track file (`file_verdict`).

A real server is alive while none of its checkers is down. Its weight is the configured one
plus what its dynamic checkers add (keepalived's man5: a `misc_dynamic` MISC_CHECK adds
exit status - 2 - configured weight, so a lone one sets the weight to status - 2; a `dynamic`
FILE_CHECK adds value x weight), kept within IPVS's 0..65535.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vrrpd.config.lvsmodel import CheckerSpec, FileCheckParams

MAX_RS_WEIGHT = 65535
# man5 "Track files": values read for a real server are limited to -2147483648..2147483648, and
# a result at or below the lower limit puts the checker in FAULT (the counterpart of a VRRP
# instance's -253).
FILE_VALUE_LIMIT = 2**31


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
    deltas: dict[int, int] = field(default_factory=dict)  # checker index -> weight it adds

    @property
    def alive(self) -> bool:
        return all(c.is_up for c in self.checkers)

    @property
    def effective_weight(self) -> int:
        return max(0, min(MAX_RS_WEIGHT, self.weight + sum(self.deltas.values())))


def dynamic_weight(rc: int, configured: int) -> int:
    """keepalived `misc_dynamic`: exit 0 keeps the configured weight, 2..255 sets rc - 2."""
    return rc - 2 if 2 <= rc <= 255 else configured


@dataclass(frozen=True, slots=True)
class FileVerdict:
    """What a track file's value means for a FILE_CHECK: up or down, and the weight it adds
    (`dynamic` only)."""

    up: bool
    delta: int = 0


def file_verdict(value: int, params: FileCheckParams) -> FileVerdict:
    """keepalived FILE_CHECK (man5 "Track files", FILE_CHECK): weight 0 is a switch, a
    non-zero value is down (`reverse`: a zero value is); otherwise value x weight (negated by
    `reverse`) is what `dynamic` adds to the weight, and at or below -2147483648 it is down."""
    value = max(-FILE_VALUE_LIMIT, min(FILE_VALUE_LIMIT, value))
    if params.weight == 0:
        return FileVerdict(up=(value == 0) != params.reverse)
    total = value * params.weight * (-1 if params.reverse else 1)
    if total <= -FILE_VALUE_LIMIT:
        return FileVerdict(up=False)
    return FileVerdict(up=True, delta=total if params.dynamic else 0)
