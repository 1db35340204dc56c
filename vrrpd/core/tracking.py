"""Tracker arithmetic: keepalived's `vrrp_script`, `track_interface`, `track_file` and
`vrrp_track_process` turned into per-instance priority contributions and fault switches.

Pure (no IO, no clock): the runtime feeds results in and applies the returned changes with
`Engine.set_priority(name, now, delta=(key, amount))` and `Engine.set_fault(name, key, reason,
now)`; the instance sums the contributions, clamps to 1..254 and never moves an owner (255).

Semantics (man keepalived.conf "VRRP script(s)", "Track files", "VRRP track processes", the
`track_*` entries of "VRRP instance(s)" and "VRRP synchronization group(s)"; checked against
keepalived 2.2.7 running in a namespace):

- Weight table (scripts, interfaces, processes): +W adds W while the tracker is up, -W subtracts
  |W| while it is down; `reverse` flips the sign (+W: -W while up; -W: +|W| while down). Weight 0
  is a fault switch: down means FAULT (`reverse`: up means FAULT).
- `track_file`: the integer in the file times the weight (negated by `reverse`) is added, capped
  at 253; below -253 the instance goes to FAULT. With weight 0 a non-zero value is a fault
  (`reverse`: a zero value is).
- A `track_*` entry without its own weight takes the tracker's weight and reverse flag.
- `vrrp_script` rise/fall: a counter in 0..rise+fall-1, up when >= rise. It starts at rise-1
  (`init_fail`: 0) with the script in INIT: an INIT script contributes nothing, except that a
  weight-0 script holds its instances in FAULT until its first result. One result decides INIT;
  after that `rise` consecutive successes bring it up and `fall` consecutive failures down.
- Sync groups: group-level trackers apply to every member; a member's own weighted trackers are
  ignored unless the group has `sync_group_tracking_weight`. An address owner (priority 255)
  ignores weighted trackers. keepalived logs both (`ignoring tracked script X with weights due
  to SYNC group` / `... due to address_owner`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from vrrpd.config.model import (
    Config,
    InstanceConfig,
    ScriptSpec,
    SyncGroupConfig,
    TrackFileSpec,
    TrackProcessSpec,
    TrackRef,
)

FILE_FAULT_BELOW = -253  # man keepalived.conf "Track files": less than -253 means FAULT
DELTA_CAP = 253


class Kind(enum.StrEnum):
    SCRIPT = "script"
    INTERFACE = "interface"
    FILE = "file"
    PROCESS = "process"


class Status(enum.StrEnum):
    """INIT: no result yet (scripts only); GOOD / BAD as keepalived's OK / KO."""

    INIT = "INIT"
    GOOD = "GOOD"
    BAD = "BAD"


def weighted(status: Status, weight: int, reverse: bool) -> tuple[int, bool]:
    """(priority contribution, fault) of an up/down tracker per keepalived's weight table."""
    if status is Status.INIT:
        return 0, weight == 0
    up = status is Status.GOOD
    if weight == 0:
        return 0, up if reverse else not up
    delta = weight if (up if weight > 0 else not up) else 0
    return (-delta if reverse else delta), False


def file_effect(value: int, weight: int, reverse: bool) -> tuple[int, bool]:
    """(priority contribution, fault) of a `track_file` value (man keepalived.conf)."""
    if weight == 0:
        return 0, value == 0 if reverse else value != 0
    total = value * weight * (-1 if reverse else 1)
    if total < FILE_FAULT_BELOW:
        return 0, True
    return min(total, DELTA_CAP), False


@dataclass
class ScriptCounter:
    """keepalived's rise/fall counter of one `vrrp_script` (see the module docstring)."""

    rise: int
    fall: int
    init_fail: bool = False
    result: int = -1
    status: Status = Status.INIT
    last_rc: int = 0

    def __post_init__(self) -> None:
        if self.result < 0:
            self.result = 0 if self.init_fail else self.rise - 1

    def record(self, ok: bool) -> Status | None:
        """One run's outcome; returns the new status when it changed."""
        full = self.rise + self.fall - 1
        if ok:
            if self.result < self.rise - 1:
                self.result += 1
                return None
            was = self.status
            self.result = full
            self.status = Status.GOOD
            return Status.GOOD if was is not Status.GOOD else None
        if self.result > self.rise:
            self.result -= 1
            return None
        was = self.status
        self.result = 0
        self.status = Status.BAD
        return Status.BAD if was is not Status.BAD else None


@dataclass
class ProcessCounter:
    """`vrrp_track_process` quorum with `fork_delay` / `terminate_delay`.

    A change of quorum caused by more processes waits `fork_delay`, one caused by fewer waits
    `terminate_delay`; if the count comes back before the delay ends, nothing changes.
    """

    quorum: int
    quorum_max: int | None = None
    fork_delay_s: float = 0.0
    terminate_delay_s: float = 0.0
    count: int = 0
    status: Status = Status.BAD
    pending_at: float | None = None

    def has_quorum(self, count: int) -> bool:
        return self.quorum <= count and (self.quorum_max is None or count <= self.quorum_max)

    def start(self, count: int) -> None:
        """The first scan: no delay (keepalived reads /proc once at start-up)."""
        self.count = count
        self.status = Status.GOOD if self.has_quorum(count) else Status.BAD

    def observe(self, count: int, now: float) -> Status | None:
        """A new count of matching processes; returns the new status when it changed now."""
        grew = count > self.count if count != self.count else None
        self.count = count
        want = Status.GOOD if self.has_quorum(count) else Status.BAD
        if want is self.status:
            self.pending_at = None  # back before the delay ran out: no bounce
            return None
        if self.pending_at is not None:
            return None
        forked = want is Status.GOOD if grew is None else grew
        delay = self.fork_delay_s if forked else self.terminate_delay_s
        if delay <= 0:
            self.status = want
            return want
        self.pending_at = now + delay
        return None

    def tick(self, now: float) -> Status | None:
        if self.pending_at is None or now < self.pending_at:
            return None
        self.pending_at = None
        want = Status.GOOD if self.has_quorum(self.count) else Status.BAD
        if want is self.status:
            return None
        self.status = want
        return want


@dataclass(frozen=True, slots=True)
class Watch:
    """One instance following one tracker, with the weight and reverse flag it uses."""

    instance: str
    kind: Kind
    name: str
    weight: int
    reverse: bool

    @property
    def key(self) -> str:
        """The fault / priority-delta key in the instance (one per tracker)."""
        return f"{self.kind.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class PriorityDelta:
    instance: str
    key: str
    amount: int


@dataclass(frozen=True, slots=True)
class FaultChange:
    instance: str
    key: str
    reason: str | None


Change = PriorityDelta | FaultChange


@dataclass
class Update:
    """What one input changed: log lines (keepalived's texts) and engine changes, in order."""

    logs: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def __iadd__(self, other: Update) -> Update:
        self.logs += other.logs
        self.changes += other.changes
        return self


def _resolve(ref: TrackRef, default_weight: int, default_reverse: bool) -> tuple[int, bool]:
    """An entry's own `weight W [reverse]`, else the tracker's weight and reverse flag."""
    if ref.weight is not None:
        return ref.weight, ref.reverse
    return default_weight, default_reverse or ref.reverse


def _defaults(config: Config, kind: Kind, name: str) -> tuple[int, bool]:
    spec: ScriptSpec | TrackFileSpec | TrackProcessSpec | None = None
    if kind is Kind.SCRIPT:
        spec = config.script(name)
    elif kind is Kind.FILE:
        spec = next((f for f in config.track_files if f.name == name), None)
    elif kind is Kind.PROCESS:
        spec = next((p for p in config.track_processes if p.name == name), None)
    return (spec.weight, spec.reverse) if spec is not None else (0, False)


def _refs(owner: InstanceConfig | SyncGroupConfig) -> list[tuple[Kind, TrackRef]]:
    lists = (
        (Kind.SCRIPT, owner.track_scripts),
        (Kind.INTERFACE, owner.track_interfaces),
        (Kind.FILE, owner.track_files),
        (Kind.PROCESS, owner.track_processes),
    )
    return [(kind, ref) for kind, refs in lists for ref in refs]


def plan_watches(config: Config) -> tuple[list[Watch], list[str]]:
    """Every (instance, tracker) pair that counts, and keepalived's lines for dropped ones."""
    group_of = {m: g for g in config.sync_groups for m in g.members}
    watches: list[Watch] = []
    notes: list[str] = []
    for inst in config.instances:
        group = group_of.get(inst.name)
        seen: set[tuple[Kind, str]] = set()
        sources = [(kind, ref, False) for kind, ref in _refs(inst)]
        if group is not None:
            sources += [(kind, ref, True) for kind, ref in _refs(group)]
        for kind, ref, from_group in sources:
            if (kind, ref.name) in seen:
                continue
            weight, reverse = _resolve(ref, *_defaults(config, kind, ref.name))
            why = ""
            if weight and inst.owner:
                why = "address_owner"
            elif weight and group and not from_group and not group.sync_group_tracking_weight:
                why = "SYNC group"
            if why:
                notes.append(
                    f"({inst.name}) ignoring tracked {kind.value} {ref.name}"
                    f" with weights due to {why}"
                )
                continue
            seen.add((kind, ref.name))
            watches.append(Watch(inst.name, kind, ref.name, weight, reverse))
    return watches, notes


def _failed_line(
    name: str, rc: int | None, signal: int | None, timed_out: bool, error: str | None
) -> str:
    """keepalived 2.2.7's texts for a script going down, by cause."""
    if timed_out:
        return f"VRRP_Script({name}) timed_out"
    if signal is not None:
        return f"VRRP_Script({name}) failed (due to signal {signal})"
    if error is not None:
        return f"VRRP_Script({name}) failed ({error})"
    return f"VRRP_Script({name}) failed (exited with status {rc})"


class Tracking:
    """Every tracker of one configuration and what each currently contributes to each instance.

    Inputs return an `Update`: keepalived's log lines and only the changes the engine has not
    seen yet, so applying every update in order keeps the engine exactly in step.
    """

    def __init__(self, config: Config) -> None:
        self.watches, self.notes = plan_watches(config)
        self._by_tracker: dict[tuple[Kind, str], list[Watch]] = {}
        for w in self.watches:
            self._by_tracker.setdefault((w.kind, w.name), []).append(w)
        used = self._by_tracker.keys()
        self.scripts = {s.name: s for s in config.scripts if (Kind.SCRIPT, s.name) in used}
        self.notes += [
            f"Warning - script {s.name} is not used"
            for s in config.scripts
            if s.name not in self.scripts
        ]
        self.counters = {
            n: ScriptCounter(s.rise, s.fall, s.init_fail) for n, s in self.scripts.items()
        }
        self.files = {f.name: f for f in config.track_files if (Kind.FILE, f.name) in used}
        self.values = dict.fromkeys(self.files, 0)
        self.processes = {
            p.name: p for p in config.track_processes if (Kind.PROCESS, p.name) in used
        }
        self.quorums = {
            n: ProcessCounter(p.quorum, p.quorum_max, p.fork_delay_s, p.terminate_delay_s)
            for n, p in self.processes.items()
        }
        self.links = {name: False for kind, name in used if kind is Kind.INTERFACE}
        self._deltas: dict[tuple[str, str], int] = {}
        self._faults: dict[tuple[str, str], str] = {}

    @property
    def empty(self) -> bool:
        return not self.watches

    # -- inputs ---------------------------------------------------------------------------------

    def start(
        self, links: Mapping[str, bool], files: Mapping[str, int], processes: Mapping[str, int]
    ) -> Update:
        """The state at start-up: link states, file values and process counts as first read;
        every script is INIT (weight-0 ones hold their instances in FAULT)."""
        for name in self.links:
            self.links[name] = bool(links.get(name, False))
        for name in self.values:
            self.values[name] = files.get(name, 0)
        for name, quorum in self.quorums.items():
            quorum.start(processes.get(name, 0))
        update = Update(logs=list(self.notes))
        for kind, name in self._by_tracker:
            update += self._refresh(kind, name)
        return update

    def script_result(
        self,
        name: str,
        *,
        rc: int | None = None,
        signal: int | None = None,
        timed_out: bool = False,
        error: str | None = None,
    ) -> Update:
        """One run of `vrrp_script NAME`: exit status `rc`, killed by `signal`, killed at its
        timeout, or not run at all (`error`). Only exit status 0 is a success."""
        counter = self.counters.get(name)
        if counter is None:
            return Update()
        update = Update()
        if rc is not None and rc != counter.last_rc:
            counter.last_rc = rc
            update.logs.append(f"Script `{name}` now returning {rc}")
        ok = rc == 0 and signal is None and not timed_out and error is None
        changed = counter.record(ok)
        if changed is Status.GOOD:
            update.logs.append(f"VRRP_Script({name}) succeeded")
        elif changed is Status.BAD:
            update.logs.append(_failed_line(name, rc, signal, timed_out, error))
        if changed is not None:
            update += self._refresh(Kind.SCRIPT, name)
        return update

    def link(self, name: str, up: bool) -> Update:
        """netlink says `name` is up or down (a tracked interface that vanished is down)."""
        if name not in self.links or self.links[name] == up:
            return Update()
        self.links[name] = up
        return self._refresh(Kind.INTERFACE, name)

    def file_value(self, name: str, value: int) -> Update:
        if name not in self.values or self.values[name] == value:
            return Update()
        self.values[name] = value
        return self._refresh(Kind.FILE, name)

    def process_count(self, name: str, count: int, now: float) -> Update:
        quorum = self.quorums.get(name)
        if quorum is None or quorum.observe(count, now) is None:
            return Update()
        return self._refresh(Kind.PROCESS, name)

    def tick(self, now: float) -> Update:
        """Fire `fork_delay` / `terminate_delay` deadlines that are due."""
        update = Update()
        for name, quorum in self.quorums.items():
            if quorum.tick(now) is not None:
                update += self._refresh(Kind.PROCESS, name)
        return update

    def next_deadline(self) -> float | None:
        pending = [q.pending_at for q in self.quorums.values() if q.pending_at is not None]
        return min(pending) if pending else None

    # -- effects --------------------------------------------------------------------------------

    def _refresh(self, kind: Kind, name: str) -> Update:
        """Recompute what tracker (kind, name) contributes to each watcher; keep the changes.

        A fault is raised before the priority moves and cleared after it, so an instance never
        advertises the intermediate priority on its way into or out of FAULT."""
        update = Update()
        for w in self._by_tracker.get((kind, name), ()):
            delta, fault = self._effect(w)
            key = (w.instance, w.key)
            reason = self._reason(w) if fault else None
            changes: list[Change] = []
            if delta != self._deltas.get(key, 0):
                self._deltas[key] = delta
                changes.append(PriorityDelta(w.instance, w.key, delta))
            if reason is not None and self._faults.get(key) != reason:  # new, or a new cause
                self._faults[key] = reason
                changes.insert(0, FaultChange(w.instance, w.key, reason))
            elif reason is None and key in self._faults:
                del self._faults[key]
                changes.append(FaultChange(w.instance, w.key, None))
            update.changes += changes
        return update

    def _status(self, kind: Kind, name: str) -> Status:
        if kind is Kind.SCRIPT:
            return self.counters[name].status
        if kind is Kind.INTERFACE:
            return Status.GOOD if self.links[name] else Status.BAD
        if kind is Kind.PROCESS:
            return self.quorums[name].status
        spec = self.files[name]
        bad = file_effect(self.values[name], spec.weight, spec.reverse)[1]
        return Status.BAD if bad else Status.GOOD

    def _effect(self, w: Watch) -> tuple[int, bool]:
        if w.kind is Kind.FILE:
            return file_effect(self.values[w.name], w.weight, w.reverse)
        return weighted(self._status(w.kind, w.name), w.weight, w.reverse)

    def _reason(self, w: Watch) -> str:
        """The fault text the instance keeps (and `Entering FAULT STATE`'s reason)."""
        status = self._status(w.kind, w.name)
        if w.kind is Kind.FILE:
            return f"tracked file {w.name} has value {self.values[w.name]}"
        if w.kind is Kind.INTERFACE:
            return f"interface {w.name} " + ("up (reverse)" if w.reverse else "down")
        if w.kind is Kind.PROCESS:
            return f"tracked process {w.name} quorum " + (
                "achieved (reverse)" if w.reverse else "not achieved"
            )
        if status is Status.INIT:
            return f"tracked script {w.name} has not returned yet"
        return f"tracked script {w.name} " + ("succeeded (reverse)" if w.reverse else "failed")

    # -- status ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, object]]:
        """{tracker: {"type", "status", "weight", "reverse", kind details, "instances": {...}}};
        a name used by two kinds is keyed `kind:name` the second time."""
        out: dict[str, dict[str, object]] = {}
        for (kind, name), watches in self._by_tracker.items():
            entry: dict[str, object] = {"type": kind.value, "status": self._status(kind, name)}
            entry.update(self._details(kind, name))
            entry["instances"] = {
                w.instance: {
                    "weight": w.weight,
                    "reverse": w.reverse,
                    "delta": self._deltas.get((w.instance, w.key), 0),
                    "fault": (w.instance, w.key) in self._faults,
                }
                for w in watches
            }
            out[name if name not in out else f"{kind.value}:{name}"] = entry
        return out

    def _details(self, kind: Kind, name: str) -> dict[str, object]:
        spec: ScriptSpec | TrackFileSpec | TrackProcessSpec
        if kind is Kind.INTERFACE:
            return {"weight": 0, "reverse": False, "up": self.links[name]}
        if kind is Kind.SCRIPT:
            spec = self.scripts[name]
            extra: dict[str, object] = {"rise": spec.rise, "fall": spec.fall}
            extra |= {"interval_s": spec.interval_s, "timeout_s": spec.timeout_s}
            extra["last_rc"] = self.counters[name].last_rc
        elif kind is Kind.FILE:
            spec = self.files[name]
            extra = {"path": spec.path, "value": self.values[name]}
        else:
            spec, quorum = self.processes[name], self.quorums[name]
            extra = {"count": quorum.count, "quorum": spec.quorum, "quorum_max": spec.quorum_max}
        return {"weight": spec.weight, "reverse": spec.reverse, **extra}
