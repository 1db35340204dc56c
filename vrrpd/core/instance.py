"""One VRRP instance: the RFC 5798 / RFC 9568 section 6.4 state machine, with keepalived's rules.

Theory of operation
-------------------
An `Instance` never does IO and never reads a clock. Every entry point takes `now` (monotonic
seconds) and returns the ordered list of actions the runtime must carry out. Deadlines live in
attributes ending in `_at`; `next_deadline()` reports the earliest, and `on_timer(now)` fires
everything due.

States (keepalived's, not the RFC's Initialize): INIT until `start()`, then BACKUP (every instance
starts there and logs `Entering BACKUP STATE (init)`), MASTER, FAULT while any fault is raised
(interface down, a weight-0 tracker failing), STOP after shutdown. `_set_state` is the only place
the state changes; it checks the transition table and records the reason.

Decisions follow keepalived's `vrrp_state_backup` / `vrrp_state_master_rx`:
- BACKUP, priority 0 heard: the down timer is cut to Skew_Time (RFC 5798 6.4.2).
- BACKUP accepts an advert when preemption is off, when its priority is >= ours (equal included:
  backups never compare addresses), or while a `preempt_delay` window runs; accepting restarts
  the down timer and, for VRRPv3, adopts the master's interval. A lower priority advert is
  otherwise discarded, so the down timer runs out and we preempt.
- MASTER, priority 0 heard: advertise at once. Higher priority, or equal priority from a
  numerically higher primary address: yield to BACKUP (no priority-0 advert). Lower: advertise at
  once and send gratuitous ARPs (RFC 9568 6.4.3; keepalived's "forcing new election").
- Becoming MASTER: advert, `Entering MASTER STATE`, VIPs, gratuitous ARP burst, notify. A second
  burst follows after `garp_master_delay`, and `garp_master_refresh` repeats while MASTER.
- In a sync group, a BACKUP whose down timer runs out only becomes MASTER when the group's gate
  agrees (keepalived `vrrp_sync_can_goto_master`); otherwise it waits another interval.
- Manual failover (vrrpctl): `resign` sends priority 0 and holds the priority at 1, `takeover`
  becomes MASTER at once at 254, `override_base` replaces the configured base priority.

Attributes, transitions and builders are in machine.py; this module handles the events.
"""

from __future__ import annotations

from vrrpd.config.model import InitialState
from vrrpd.core.actions import (
    Action,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    PriorityChanged,
    RunNotify,
    State,
)
from vrrpd.core.machine import (
    LINK_FAULT,
    Manual,
    StateMachine,
    TransitionError,
    next_tick,
)
from vrrpd.errors import VrrpdError
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.constants import (
    PRIORITY_MAX_EFFECTIVE,
    PRIORITY_MIN_EFFECTIVE,
    PRIORITY_OWNER,
    PRIORITY_STOP,
    VRRP_VERSION_2,
)

__all__ = ["LINK_FAULT", "Instance", "ManualError", "TransitionError"]


class ManualError(VrrpdError):
    """A manual failover request that cannot be carried out (wrong state, bad value)."""


class Instance(StateMachine):
    """The state machine of one `vrrp_instance` (see the module docstring)."""

    # -- entry points ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Leave INIT: FAULT if a fault is raised, else BACKUP; an owner goes on to MASTER.

        An owner configured `state MASTER` goes straight to MASTER, as keepalived 2.2.7 does
        (no `Entering BACKUP STATE (init)` line and no BACKUP notify first); with `state
        BACKUP` it passes through BACKUP but still takes over at once (RFC 5798 6.4.1), where
        keepalived would wait a Master_Down_Interval.
        """
        if self.faults and self.faults.keys() <= self.init_holds.keys():
            self.held = True  # out of service, silently, until the first results (`hold`)
            return []
        if self.faults:
            return self._enter_fault(now, self._fault_reason(), init=True)
        return self._start_service(now)

    def _start_service(self, now: float, init: bool = True) -> list[Action]:
        if (
            self.owner
            and self.cfg.initial_state == InitialState.MASTER
            and self.may_become_master()
        ):
            timeout = LogEvent(self.name, "Receive advertisement timeout", detail=True)
            return [timeout, *self._enter_master(now, "address owner")]
        actions = self._enter_backup(now, "init", init=init)
        if self.owner and self.may_become_master():
            actions += self._enter_master(now, "address owner")
        return actions

    def on_advert(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        """A received advert that passed the receive checks (RFC 5798 6.4.2 / 6.4.3)."""
        if self.state not in (State.BACKUP, State.MASTER):
            return []  # keepalived: instances in FAULT or INIT ignore adverts
        self.stats.advert_rcvd += 1
        if advert.priority == PRIORITY_STOP:
            self.stats.pri_zero_rcvd += 1
        if self.state == State.BACKUP:
            return self._backup_rx(advert, src, now)
        return self._master_rx(advert, src, now)

    def on_timer(self, now: float) -> list[Action]:
        """Fire every deadline that is due at `now`."""
        actions: list[Action] = []
        if self.manual_until is not None and self.manual_until <= now:
            actions += self._end_manual(now, "resign hold expired")
        if self.state == State.BACKUP and self.down_at is not None and self.down_at <= now:
            actions.append(LogEvent(self.name, "Receive advertisement timeout", detail=True))
            if self.may_become_master():
                actions += self._enter_master(now, "master down timer expired")
            else:
                self._reset_down_timer(now)  # wait for the rest of the sync group
        if self.state != State.MASTER:
            return actions
        if self.adver_at is not None and self.adver_at <= now:
            actions.append(self._send(self.effective_priority))
            self.adver_at = self.next_advert_at(now)
        actions += self._garp_timers(now)
        return actions

    def hold(self, key: str, reason: str) -> None:
        """Before `start`: keep the instance out of service until `key` first reports.

        keepalived holds an instance tracking a weight-0 script that has not returned yet in
        INIT, silently: no `(init)` line and no notify, then `Entering BACKUP STATE` (or FAULT)
        once the script has answered.
        """
        self.faults[key] = reason
        self.init_holds[key] = reason

    def set_fault(self, key: str, reason: str | None, now: float) -> list[Action]:
        """Raise (`reason` text) or clear (None) one fault source; FAULT while any is raised."""
        if reason is None:
            self.faults.pop(key, None)
        else:
            self.faults[key] = reason
        if self.held:
            return self._release_hold(key, reason, now)
        if self.state in (State.INIT, State.STOP, State.DELETED):
            return []
        if self.faults and self.state != State.FAULT:
            return self._enter_fault(now, self._fault_reason())
        if not self.faults and self.state == State.FAULT:
            actions = self._enter_backup(now, "fault cleared")
            if self.owner and self.may_become_master():
                actions += self._enter_master(now, "address owner")
            return actions
        return []

    def _release_hold(self, key: str, reason: str | None, now: float) -> list[Action]:
        """A held instance heard from one of its trackers: a failure is a real fault now
        (the tracker restating "not returned yet" keeps the hold)."""
        if reason is not None and self.init_holds.get(key) == reason:
            return []
        self.init_holds.pop(key, None)
        if self.faults and self.faults.keys() <= self.init_holds.keys():
            return []  # still waiting for another tracker's first result
        self.held = False
        if self.faults:
            return self._enter_fault(now, self._fault_reason())
        return self._start_service(now, init=False)

    def on_vip_deleted(self, address: IPAddress, now: float) -> list[Action]:
        """A VIP vanished from the interface while MASTER (keepalived `keepalived_netlink.c`):
        unless it is `no_track`, go to BACKUP, removing the rest, and let the election re-run."""
        if self.state != State.MASTER:
            return []
        tracked = any(v.ip == address and v.track for v in self.cfg.vips + self.cfg.excluded_vips)
        if not tracked:
            return []
        reason = f"VIP {address} deleted"
        return [LogEvent(self.name, f"{reason} - entering BACKUP"), *self._leave_master(
            now, State.BACKUP, reason
        )]  # fmt: skip

    def set_link_src(self, addr: IPAddress | None, now: float) -> list[Action]:
        """The interface's primary address changed; no address to send from is a fault."""
        self.link_src = addr
        missing = self.src is None
        return self.set_fault("src", "src address not configured" if missing else None, now)

    def set_priority(
        self, now: float, *, base: int | None = None, delta: tuple[str, int] | None = None
    ) -> list[Action]:
        """Change the base priority or one tracker's contribution, then re-derive the effective one.

        keepalived `vrrp_set_effective_priority`: base + contributions clamped to 1..254; an
        owner (base 255) never changes.
        """
        if base is not None:
            self.base_priority = base
        if delta is not None:
            self.priority_deltas[delta[0]] = delta[1]
        return self._apply_priority(now)

    def shutdown_release(self, now: float) -> list[Action]:
        """First shutdown phase (keepalived `vrrp_terminate_phase1`): a MASTER sends priority 0
        and removes its addresses."""
        if self.state != State.MASTER:
            return []
        actions: list[Action] = [self._send(PRIORITY_STOP)]
        actions.append(LogEvent(self.name, "sent 0 priority", detail=True))
        actions += self._remove_vips()
        return actions

    def shutdown_stop(self, now: float) -> list[Action]:
        """Second shutdown phase: the instance is STOPped and its STOP notify runs."""
        if self.state in (State.STOP, State.DELETED):
            return []
        actions: list[Action] = [self._set_state(State.STOP, "shutdown", now)]
        actions.append(self._notify(NotifyEvent.STOP))
        self._clear_timers()
        self.manual_until = None
        return actions

    def delete(self, now: float) -> list[Action]:
        """Removed by a reload (keepalived `vrrp_exist` found no match): a MASTER sends priority
        0 and releases its addresses; notify DELETED if `notify_deleted` is configured, else
        FAULT, as keepalived does for backward compatibility."""
        if self.state in (State.INIT, State.STOP, State.DELETED):
            return []
        actions = self.shutdown_release(now)
        actions.append(self._set_state(State.DELETED, "removed from the configuration", now))
        deleted = self.cfg.notify.deleted is not None
        actions.append(self._notify(NotifyEvent.DELETED if deleted else NotifyEvent.FAULT))
        self._clear_timers()
        self.manual_until = None
        return actions

    def sync_to(self, target: State, now: float, group: str) -> list[Action]:
        """Follow the sync group: BACKUP -> MASTER (keepalived `vrrp_sync_master`), MASTER ->
        BACKUP without priority 0 (`vrrp_sync_backup`). FAULT travels as a fault key instead."""
        reason = f"sync group {group}"
        if target == State.MASTER and self.state == State.BACKUP:
            return self._enter_master(now, reason)
        if target == State.BACKUP and self.state == State.MASTER:
            return self._leave_master(now, State.BACKUP, reason)
        return []

    # -- manual failover (vrrpctl) --------------------------------------------------------------

    def override_base(self, base: int | None, now: float, who: str) -> list[Action]:
        """Replace the configured base priority at run time (None restores it and also ends a
        resign hold or takeover: "back to the configuration")."""
        if base is not None and not PRIORITY_MIN_EFFECTIVE <= base <= PRIORITY_MAX_EFFECTIVE:
            raise ManualError(f"({self.name}) priority must be 1..254, not {base}")
        self.base_override = base
        self.base_priority = self.cfg.priority if base is None else base
        if base is None:
            msg = f"base priority override cleared by {who}, back to {self.cfg.priority}"
            self.manual = self.manual_until = None
        else:
            msg = f"base priority set to {base} by {who} (configured {self.cfg.priority})"
        return [LogEvent(self.name, msg), *self._apply_priority(now)]

    def resign(self, now: float, hold_s: float | None, who: str) -> list[Action]:
        """Hand mastership away: priority-0 advert (RFC 5798 6.4.3, as at shutdown), BACKUP,
        and priority 1 until `hold_s` passes (None: until takeover or cleared)."""
        self.check_manual("resign", hold_s)
        self.manual = Manual.RESIGN
        self.manual_until = None if hold_s is None else now + hold_s
        held = "until takeover or clear" if hold_s is None else f"for {hold_s:g}s"
        reason = f"resign requested by {who}"
        actions: list[Action] = [
            LogEvent(self.name, f"{reason} - holding priority {PRIORITY_MIN_EFFECTIVE} {held}")
        ]
        if self.state == State.MASTER:
            actions += self._leave_master(now, State.BACKUP, reason, stop_advert=True)
            self.master_addr, self.master_priority = None, 0
        return actions + self._apply_priority(now)

    def takeover(self, now: float, who: str) -> list[Action]:
        """Become MASTER now: priority raised to 254 (an owner keeps 255) so the current master
        yields to our advert (RFC 5798 6.4.3); ends a resign hold."""
        self.check_manual("take over")
        self.manual, self.manual_until = Manual.TAKEOVER, None
        reason = f"takeover requested by {who}"
        actions: list[Action] = [LogEvent(self.name, reason)]
        was_master = self.state == State.MASTER
        changed = self._apply_priority(now)
        actions += changed
        if self.state == State.BACKUP:
            actions += self._enter_master(now, reason)
        elif was_master and not changed:
            actions.append(self._send(self.effective_priority))  # "an advert at once"
            self.adver_at = self.next_advert_at(now)
        return actions

    def check_manual(self, what: str, hold_s: float | None = None) -> None:
        """Raise `ManualError` unless a resign / takeover makes sense in the current state."""
        if hold_s is not None and hold_s <= 0:
            raise ManualError(f"({self.name}) resign hold must be > 0 seconds, not {hold_s:g}")
        if self.state not in (State.BACKUP, State.MASTER):
            why = f": {self._fault_reason()}" if self.state == State.FAULT else ""
            raise ManualError(f"({self.name}) cannot {what} in {self.state.value} state{why}")

    def _end_manual(self, now: float, why: str) -> list[Action]:
        self.manual = self.manual_until = None
        return [LogEvent(self.name, why), *self._apply_priority(now)]

    def _apply_priority(self, now: float) -> list[Action]:
        """Re-derive the effective priority; on a change log it, advertise it at once as MASTER
        or re-time the down timer as BACKUP (keepalived `vrrp_set_effective_priority`)."""
        old, new = self.effective_priority, self.computed_priority()
        if old == new:
            return []
        self.effective_priority = new
        actions: list[Action] = [
            PriorityChanged(self.name, old, new),
            LogEvent(self.name, f"Changing effective priority from {old} to {new}"),
        ]
        if self.notify_priority_changes and self.state in (State.MASTER, State.BACKUP):
            event = NotifyEvent.MASTER_PRIORITY
            if self.state != State.MASTER:
                event = NotifyEvent.BACKUP_PRIORITY
            actions.append(RunNotify(NotifyTarget.INSTANCE, self.name, event, new))
        if self.state == State.MASTER:
            actions.append(self._send(new))
            self.adver_at = self.next_advert_at(now)
        elif self.state == State.BACKUP:
            self._rearm_down_timer(now)
            if new == PRIORITY_OWNER and self.may_become_master():
                actions += self._enter_master(now, "address owner")
        return actions

    # -- BACKUP ---------------------------------------------------------------------------------

    def _backup_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        ours = self.effective_priority
        if advert.priority == PRIORITY_STOP:
            self.down_at = now + self.skew_time_s()
            self._down_reset_at, self._down_skew_only = now, True
            return []
        if not self.cfg.preempt or advert.priority >= ours or self._in_preempt_delay(advert, now):
            self.master_addr, self.master_priority = src, advert.priority
            self.want_master = False  # a live master: keepalived `wantstate = BACKUP`
            if self.cfg.version != VRRP_VERSION_2:
                self.master_adver_int_cs = advert.adver_int_cs  # RFC 5798 6.4.2: adopt
            self._reset_down_timer(now)
            return []
        msg = f"received lower priority ({advert.priority}) advert from {src} - discarding"
        return [LogEvent(self.name, msg)]

    def _in_preempt_delay(self, advert: Advert, now: float) -> bool:
        """keepalived `preempt_delay`: the first lower-priority master seen opens a window during
        which it is still accepted; a higher priority master closes the window again."""
        if self.cfg.preempt_delay_s <= 0:
            return False
        if advert.priority >= self.effective_priority:
            self.preempt_until = None
            return False
        if self.preempt_until is None:
            self.preempt_until = now + self.cfg.preempt_delay_s
        return now < self.preempt_until

    # -- MASTER ---------------------------------------------------------------------------------

    def _master_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        ours = self.effective_priority
        if advert.priority == PRIORITY_STOP:
            self.adver_at = self.next_advert_at(now)
            return [self._send(ours)]
        own = self.src
        theirs_wins = advert.priority > ours or (
            advert.priority == ours and own is not None and int(src) > int(own)
        )
        if advert.priority == ours and src == own:
            return [LogEvent(self.name, f"received advert with our own address {src}")]
        if theirs_wins:
            return self._yield_to(advert, src, now)
        return self._answer_lower(advert, src, now)

    def _yield_to(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        ours = self.effective_priority
        if advert.priority > ours:
            msg = (
                f"Master received advert from {src}"
                f" with higher priority {advert.priority}, ours {ours}"
            )
        else:
            msg = (
                f"Master received advert from {src} with same priority {ours}"
                " but higher IP address than ours"
            )
        actions: list[Action] = [LogEvent(self.name, msg)]
        if self.cfg.higher_prio_send_advert:
            actions.append(self._send(ours))
        self.master_addr, self.master_priority = src, advert.priority
        if self.cfg.version != VRRP_VERSION_2:
            self.master_adver_int_cs = advert.adver_int_cs
        return actions + self._leave_master(now, State.BACKUP, "higher priority advert")

    def _answer_lower(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        msg = (
            f"Received advert from {src} with lower priority {advert.priority},"
            f" ours {self.effective_priority}, forcing new election"
        )
        actions: list[Action] = [LogEvent(self.name, msg)]
        if not self.cfg.lower_prio_no_advert:
            actions.append(self._send(self.effective_priority))
            self.adver_at = self.next_advert_at(now)
        garp = self.cfg.garp
        if garp.lower_prio_repeat > 0:
            actions.append(self._announce(garp.lower_prio_repeat))
            if garp.lower_prio_delay_s > 0:
                self.lower_garp_at = now + garp.lower_prio_delay_s
        actions.append(self._notify(NotifyEvent.MASTER_RX_LOWER_PRI))
        return actions

    def _garp_timers(self, now: float) -> list[Action]:
        """keepalived `garp_master_delay` second burst, `garp_master_refresh`, lower-prio repeat."""
        garp = self.cfg.garp
        actions: list[Action] = []
        if self.garp_at is not None and self.garp_at <= now:
            self.garp_at = None
            actions.append(self._announce(garp.master_repeat))
        if self.lower_garp_at is not None and self.lower_garp_at <= now:
            self.lower_garp_at = None
            actions.append(self._announce(garp.lower_prio_repeat))
        if self.refresh_at is not None and self.refresh_at <= now:
            self.refresh_at = next_tick(self.refresh_at, garp.master_refresh_s, now)
            actions.append(self._announce(garp.master_refresh_repeat))
        return actions
