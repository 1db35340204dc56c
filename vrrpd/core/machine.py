"""The state-keeping half of a VRRP instance: attributes, transitions and action builders.

`Instance` (instance.py) adds the event handlers on top. Everything that changes `state` lives
here: `_set_state` is the only setter and checks the transition table; the `_enter_*` /
`_leave_master` methods emit keepalived's ordered actions for each transition (RFC 5798 /
RFC 9568 section 6.4, keepalived `become_master` / `vrrp_state_leave_master`).

Effective priority (keepalived `vrrp_set_effective_priority`): base + tracker contributions
clamped to 1..254, an owner (base 255) never changes; a manual resign holds it at 1 and a manual
takeover raises it to 254 (see `Manual`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from vrrpd.config.model import InstanceConfig
from vrrpd.core import emit
from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.core.stats import InstanceStats
from vrrpd.core.timers import master_down_interval_s, skew_time_s, slot_after
from vrrpd.errors import VrrpdError
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.constants import (
    PRIORITY_MAX_EFFECTIVE,
    PRIORITY_MIN_EFFECTIVE,
    PRIORITY_OWNER,
    PRIORITY_STOP,
)

_ALLOWED: dict[State, frozenset[State]] = {
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT, State.STOP}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.STOP, State.DELETED}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.STOP, State.DELETED}),
    State.FAULT: frozenset({State.BACKUP, State.STOP, State.DELETED}),
    State.STOP: frozenset(),
    State.DELETED: frozenset(),
}

# The fault key the engine raises while the instance's own interface is down (or missing).
LINK_FAULT = "link"

# A sync group's answer to "may this member become MASTER now?" (keepalived
# `vrrp_sync_can_goto_master`); None outside a group.
MasterGate = Callable[["StateMachine"], bool]


class TransitionError(VrrpdError):
    """A state change the transition table forbids: a bug in the core, never user input."""


class Manual(enum.Enum):
    """A manual failover request in force (vrrpctl `resign` / `takeover`).

    RESIGN advertises and compares at priority 1, so this node does not preempt back but still
    takes over when nobody else does (its Master_Down timer runs with the longest skew).
    TAKEOVER raises a non-owner to 254 so its advert beats the current master's (RFC 5798
    6.4.3: a master yields to a higher priority) and keeps it there until cleared.
    """

    RESIGN = "resign"
    TAKEOVER = "takeover"


class StateMachine:
    """Attributes, derived values, transitions and builders of one `vrrp_instance`."""

    def __init__(self, cfg: InstanceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.state = State.INIT
        self.base_priority = cfg.priority
        self.priority_deltas: dict[str, int] = {}
        self.effective_priority = cfg.priority
        self.notify_priority_changes = cfg.notify_priority_changes
        self.manual: Manual | None = None
        self.manual_until: float | None = None
        self.base_override: int | None = None
        self.faults: dict[str, str] = {}
        self.init_holds: dict[str, str] = {}  # fault key -> reason while INIT is held silent
        self.held = False
        self.master_adver_int_cs = cfg.advert_int_cs
        self.master_addr: IPAddress | None = None
        self.master_priority = 0  # the master's advertised priority, while BACKUP (dumps)
        self.link_src: IPAddress | None = None
        self.stats = InstanceStats()
        self.last_transition_at: float | None = None
        self.last_reason = ""
        # keepalived `wantstate == MASTER`: our down timer ran out since the last advert we
        # accepted; a sync group goes MASTER only when every member wants it.
        self.want_master = False
        self.gate: MasterGate | None = None
        self.down_at: float | None = None
        self._down_reset_at = 0.0
        self._down_skew_only = False
        self.adver_at: float | None = None
        # (period, phase): adverts go out on the grid phase + k * period (Engine.index shares
        # one grid between up to ADVERT_SLOT_SIZE instances, so they cost one wake-up).
        self.advert_slot = (cfg.advert_int_cs / 100.0, 0.0)
        self.garp_at: float | None = None
        self.refresh_at: float | None = None
        self.lower_garp_at: float | None = None
        self.preempt_until: float | None = None
        self._sent: tuple[int, IPAddress | None, InstanceConfig, SendAdvert] | None = None

    # -- derived values -------------------------------------------------------------------------

    @property
    def src(self) -> IPAddress | None:
        """Advert source and tie-break address: `unicast_src_ip`/`mcast_src_ip`, else the link's."""
        return self.cfg.src_ip if self.cfg.src_ip is not None else self.link_src

    @property
    def interface(self) -> str:
        return self.cfg.interface or ""

    @property
    def owner(self) -> bool:
        return self.effective_priority == PRIORITY_OWNER

    def skew_time_s(self) -> float:
        return skew_time_s(self.cfg.version, self.effective_priority, self.master_adver_int_cs)

    def master_down_interval_s(self) -> float:
        return master_down_interval_s(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_int_cs,
            self.cfg.down_timer_adverts,
        )

    def next_deadline(self) -> float | None:
        """The earliest of the instance's timers (called after every input it handles)."""
        best = self.down_at
        for at in (
            self.adver_at,
            self.garp_at,
            self.refresh_at,
            self.lower_garp_at,
            self.manual_until,
        ):
            if at is not None and (best is None or at < best):
                best = at
        return best

    def advert(self, priority: int | None = None) -> Advert:
        """The advert this instance sends, at `priority` or its effective priority."""
        return emit.advert_for(self.cfg, self.effective_priority if priority is None else priority)

    def computed_priority(self) -> int:
        """keepalived `vrrp_set_effective_priority`, then the manual override on top."""
        if self.manual == Manual.RESIGN:
            return PRIORITY_MIN_EFFECTIVE
        if self.base_priority == PRIORITY_OWNER:
            return PRIORITY_OWNER
        if self.manual == Manual.TAKEOVER:
            return PRIORITY_MAX_EFFECTIVE
        total = self.base_priority + sum(self.priority_deltas.values())
        return max(PRIORITY_MIN_EFFECTIVE, min(PRIORITY_MAX_EFFECTIVE, total))

    def may_become_master(self) -> bool:
        """Outside a sync group always; inside, only when the group agrees (it then wants)."""
        if self.gate is None:
            return True
        self.want_master = True
        return self.gate(self)

    # -- timers ---------------------------------------------------------------------------------

    def next_advert_at(self, now: float) -> float:
        """After an advert sent at `now`: the next one, in this instance's advert slot."""
        return slot_after(now, *self.advert_slot)

    def _reset_down_timer(self, now: float) -> None:
        self._down_reset_at, self._down_skew_only = now, False
        self.down_at = now + self.master_down_interval_s()

    def _rearm_down_timer(self, now: float) -> None:
        """The effective priority changed: keep the time already waited, recompute the rest."""
        if self.down_at is None:
            return
        span = self.skew_time_s() if self._down_skew_only else self.master_down_interval_s()
        self.down_at = max(now, self._down_reset_at + span)

    def _clear_timers(self) -> None:
        self.down_at = self.adver_at = self.garp_at = self.refresh_at = self.lower_garp_at = None

    # -- transitions ----------------------------------------------------------------------------

    def _enter_backup(self, now: float, reason: str, *, init: bool = False) -> list[Action]:
        actions: list[Action] = [self._set_state(State.BACKUP, reason, now)]
        actions.append(LogEvent(self.name, "Entering BACKUP STATE" + (" (init)" if init else "")))
        actions.append(self._notify(NotifyEvent.BACKUP))
        self.master_adver_int_cs = self.cfg.advert_int_cs
        self.preempt_until = None
        self._reset_down_timer(now)
        return actions

    def _enter_master(self, now: float, reason: str) -> list[Action]:
        """RFC 5798 6.4.2 "Down_Timer fires" with keepalived's order (`become_master`)."""
        actions: list[Action] = [self._send(self.effective_priority)]
        actions.append(self._set_state(State.MASTER, reason, now))
        actions.append(LogEvent(self.name, "Entering MASTER STATE"))
        self.stats.become_master += 1
        self.want_master = True
        self.master_addr, self.master_priority = self.src, 0
        self.down_at = None
        self.adver_at = self.next_advert_at(now)
        actions.append(LogEvent(self.name, "setting VIPs.", detail=True))
        actions.append(self._add_vips())
        garp = self.cfg.garp
        actions.append(self._announce(garp.master_repeat))
        self.garp_at = now + garp.master_delay_s if garp.master_delay_s > 0 else None
        self.refresh_at = now + garp.master_refresh_s if garp.master_refresh_s > 0 else None
        actions.append(self._notify(NotifyEvent.MASTER))
        return actions

    def _enter_fault(self, now: float, reason: str, *, init: bool = False) -> list[Action]:
        if self.state == State.MASTER:
            return self._leave_master(now, State.FAULT, reason)
        actions: list[Action] = [self._set_state(State.FAULT, reason, now)]
        actions.append(LogEvent(self.name, "Entering FAULT STATE" + (" (init)" if init else "")))
        actions.append(self._notify(NotifyEvent.FAULT))
        self._clear_timers()
        return actions

    def _leave_master(
        self, now: float, new: State, reason: str, *, stop_advert: bool | None = None
    ) -> list[Action]:
        """MASTER exit: (priority 0 for FAULT, or when asked) log, remove addresses, notify.

        With our link down a priority-0 advert cannot be sent, so FAULT skips it then.
        """
        actions: list[Action] = []
        if stop_advert:
            actions += [self._send(PRIORITY_STOP), LogEvent(self.name, "sent 0 priority", True)]
        elif stop_advert is None and new == State.FAULT and LINK_FAULT not in self.faults:
            actions.append(self._send(PRIORITY_STOP))
        actions.append(self._set_state(new, reason, now))
        actions.append(LogEvent(self.name, f"Entering {new.value} STATE"))
        self.stats.release_master += 1
        actions += self._remove_vips()
        actions.append(self._notify(NotifyEvent(new.value)))
        self._clear_timers()
        if new == State.BACKUP:
            self.preempt_until = None
            self._reset_down_timer(now)
        return actions

    def _set_state(self, new: State, reason: str, now: float) -> StateChanged:
        old = self.state
        if new not in _ALLOWED[old]:
            raise TransitionError(f"{self.name}: {old} -> {new} is not a VRRP transition")
        if new != State.MASTER:
            self.want_master = False
        self.state, self.last_transition_at, self.last_reason = new, now, reason
        return StateChanged(self.name, old, new, reason)

    def _fault_reason(self) -> str:
        return "; ".join(self.faults.values())

    # -- action builders ------------------------------------------------------------------------

    def _send(self, priority: int) -> SendAdvert:
        self.stats.advert_sent += 1
        if priority == PRIORITY_STOP:
            self.stats.pri_zero_sent += 1
        # The same action object while nothing in it changes: the executor then finds the
        # encoded bytes by identity, so a steady-state advert costs a send (issue 4).
        src, sent = self.src, self._sent
        if sent is None or sent[2] is not self.cfg or sent[0] != priority or sent[1] != src:
            action = emit.send_advert(self.cfg, src, self.advert(priority))
            self._sent = sent = (priority, src, self.cfg, action)
        return sent[3]

    def _add_vips(self) -> AddVips:
        return emit.add_vips(self.cfg)

    def _remove_vips(self) -> list[Action]:
        return [LogEvent(self.name, "removing VIPs.", detail=True), emit.del_vips(self.cfg)]

    def _announce(self, repeat: int) -> Announce:
        return emit.announce(self.cfg, repeat)

    def _notify(self, event: NotifyEvent) -> RunNotify:
        return RunNotify(NotifyTarget.INSTANCE, self.name, event, self.effective_priority)


def next_tick(scheduled_at: float, period_s: float, now: float) -> float:
    """The next periodic deadline after `scheduled_at`, kept on its grid so adverts don't drift;
    if the loop was late by more than a period, restart the grid from `now`."""
    nxt = scheduled_at + period_s
    return nxt if nxt > now else now + period_s
