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
"""

from __future__ import annotations

from vrrpd.config.model import InstanceConfig
from vrrpd.core import emit
from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    PriorityChanged,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.core.stats import InstanceStats
from vrrpd.core.timers import master_down_interval_s, skew_time_s
from vrrpd.errors import VrrpdError
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.constants import (
    PRIORITY_MAX_EFFECTIVE,
    PRIORITY_MIN_EFFECTIVE,
    PRIORITY_OWNER,
    PRIORITY_STOP,
    VRRP_VERSION_2,
)

_ALLOWED: dict[State, frozenset[State]] = {
    State.INIT: frozenset({State.BACKUP, State.FAULT, State.STOP}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.STOP, State.DELETED}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.STOP, State.DELETED}),
    State.FAULT: frozenset({State.BACKUP, State.STOP, State.DELETED}),
    State.STOP: frozenset(),
    State.DELETED: frozenset(),
}


# The fault key the engine raises while the instance's own interface is down (or missing).
LINK_FAULT = "link"


class TransitionError(VrrpdError):
    """A state change the transition table forbids: a bug in the core, never user input."""


class Instance:
    """The state machine of one `vrrp_instance` (see the module docstring)."""

    def __init__(self, cfg: InstanceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.state = State.INIT
        self.base_priority = cfg.priority
        self.priority_deltas: dict[str, int] = {}
        self.effective_priority = cfg.priority
        self.faults: dict[str, str] = {}
        self.master_adver_int_cs = cfg.advert_int_cs
        self.master_addr: IPAddress | None = None
        self.link_src: IPAddress | None = None
        self.stats = InstanceStats()
        self.last_transition_at: float | None = None
        self.last_reason = ""
        self.down_at: float | None = None
        self._down_reset_at = 0.0
        self._down_skew_only = False
        self.adver_at: float | None = None
        self.garp_at: float | None = None
        self.refresh_at: float | None = None
        self.lower_garp_at: float | None = None
        self.preempt_until: float | None = None

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
        pending = [
            t
            for t in (
                self.down_at,
                self.adver_at,
                self.garp_at,
                self.refresh_at,
                self.lower_garp_at,
            )
            if t is not None
        ]
        return min(pending) if pending else None

    def advert(self, priority: int | None = None) -> Advert:
        """The advert this instance sends, at `priority` or its effective priority."""
        return emit.advert_for(self.cfg, self.effective_priority if priority is None else priority)

    # -- entry points ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Leave INIT: FAULT if a fault is raised, else BACKUP; an owner goes on to MASTER."""
        if self.faults:
            return self._enter_fault(now, self._fault_reason(), init=True)
        actions = self._enter_backup(now, "init", init=True)
        if self.owner:
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
        if self.state == State.BACKUP and self.down_at is not None and self.down_at <= now:
            actions.append(LogEvent(self.name, "Receive advertisement timeout", detail=True))
            actions += self._enter_master(now, "master down timer expired")
        if self.state != State.MASTER:
            return actions
        if self.adver_at is not None and self.adver_at <= now:
            actions.append(self._send(self.effective_priority))
            self.adver_at = _next_tick(self.adver_at, self.cfg.advert_int_cs / 100.0, now)
        actions += self._garp_timers(now)
        return actions

    def set_fault(self, key: str, reason: str | None, now: float) -> list[Action]:
        """Raise (`reason` text) or clear (None) one fault source; FAULT while any is raised."""
        if reason is None:
            self.faults.pop(key, None)
        else:
            self.faults[key] = reason
        if self.state in (State.INIT, State.STOP, State.DELETED):
            return []
        if self.faults and self.state != State.FAULT:
            return self._enter_fault(now, self._fault_reason())
        if not self.faults and self.state == State.FAULT:
            actions = self._enter_backup(now, "fault cleared")
            if self.owner:
                actions += self._enter_master(now, "address owner")
            return actions
        return []

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
        new = self.base_priority
        if new != PRIORITY_OWNER:
            total = new + sum(self.priority_deltas.values())
            new = max(PRIORITY_MIN_EFFECTIVE, min(PRIORITY_MAX_EFFECTIVE, total))
        old, self.effective_priority = self.effective_priority, new
        if old == new:
            return []
        actions: list[Action] = [
            PriorityChanged(self.name, old, new),
            LogEvent(self.name, f"Changing effective priority from {old} to {new}"),
        ]
        if self.state == State.MASTER:
            actions.append(self._send(new))
            self.adver_at = now + self.cfg.advert_int_cs / 100.0
        elif self.state == State.BACKUP:
            self._rearm_down_timer(now)
            if new == PRIORITY_OWNER:
                actions += self._enter_master(now, "address owner")
        return actions

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
        return actions

    # -- BACKUP ---------------------------------------------------------------------------------

    def _backup_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        ours = self.effective_priority
        if advert.priority == PRIORITY_STOP:
            self.down_at = now + self.skew_time_s()
            self._down_reset_at, self._down_skew_only = now, True
            return []
        if not self.cfg.preempt or advert.priority >= ours or self._in_preempt_delay(advert, now):
            self.master_addr = src
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

    def _reset_down_timer(self, now: float) -> None:
        self._down_reset_at, self._down_skew_only = now, False
        self.down_at = now + self.master_down_interval_s()

    def _rearm_down_timer(self, now: float) -> None:
        """The effective priority changed: keep the time already waited, recompute the rest."""
        if self.down_at is None:
            return
        span = self.skew_time_s() if self._down_skew_only else self.master_down_interval_s()
        self.down_at = max(now, self._down_reset_at + span)

    # -- MASTER ---------------------------------------------------------------------------------

    def _master_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        ours = self.effective_priority
        if advert.priority == PRIORITY_STOP:
            self.adver_at = now + self.cfg.advert_int_cs / 100.0
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
        self.master_addr = src
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
            self.adver_at = now + self.cfg.advert_int_cs / 100.0
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
            self.refresh_at = _next_tick(self.refresh_at, garp.master_refresh_s, now)
            actions.append(self._announce(garp.master_refresh_repeat))
        return actions

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
        self.master_addr = self.src
        self.down_at = None
        self.adver_at = now + self.cfg.advert_int_cs / 100.0
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

    def _leave_master(self, now: float, new: State, reason: str) -> list[Action]:
        """MASTER exit: (priority 0 only for FAULT) log, remove addresses, notify."""
        actions: list[Action] = []
        if new == State.FAULT and LINK_FAULT not in self.faults:
            actions.append(self._send(PRIORITY_STOP))  # with our link down it cannot be sent
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
        self.state, self.last_transition_at, self.last_reason = new, now, reason
        return StateChanged(self.name, old, new, reason)

    def _clear_timers(self) -> None:
        self.down_at = self.adver_at = self.garp_at = self.refresh_at = self.lower_garp_at = None

    def _fault_reason(self) -> str:
        return "; ".join(self.faults.values())

    # -- action builders ------------------------------------------------------------------------

    def _send(self, priority: int) -> SendAdvert:
        self.stats.advert_sent += 1
        if priority == PRIORITY_STOP:
            self.stats.pri_zero_sent += 1
        return emit.send_advert(self.cfg, self.src, self.advert(priority))

    def _add_vips(self) -> AddVips:
        return emit.add_vips(self.cfg)

    def _remove_vips(self) -> list[Action]:
        return [LogEvent(self.name, "removing VIPs.", detail=True), emit.del_vips(self.cfg)]

    def _announce(self, repeat: int) -> Announce:
        return emit.announce(self.cfg, repeat)

    def _notify(self, event: NotifyEvent) -> RunNotify:
        return RunNotify(NotifyTarget.INSTANCE, self.name, event, self.effective_priority)


def _next_tick(scheduled_at: float, period_s: float, now: float) -> float:
    """The next periodic deadline after `scheduled_at`, kept on its grid so adverts don't drift;
    if the loop was late by more than a period, restart the grid from `now`."""
    nxt = scheduled_at + period_s
    return nxt if nxt > now else now + period_s
