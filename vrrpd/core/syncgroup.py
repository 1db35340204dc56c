"""keepalived `vrrp_sync_group`: member instances move together (keepalived 2.2.x `vrrp_sync.c`).

Theory of operation
-------------------
The group has its own state (BACKUP, MASTER, FAULT, STOP) and follows its members; the engine
calls `follow(member, now)` after anything that may have changed a member (an advert, a timer, a
fault, a link). The rules, as in keepalived:

- FAULT: while any member has a fault of its own, every other member carries the group's
  `SYNC_FAULT`, so all are in FAULT (keepalived `vrrp_sync_fault`, and a member leaves FAULT only
  when no member of the group is still down). The MASTERs among them send priority 0 on the way
  out, so the peer's group takes over in Skew_Time instead of Master_Down_Interval.
- MASTER only when every member can be: a member whose down timer runs out becomes MASTER only
  if every other member "wants MASTER" too (its own down timer ran out since the last advert it
  accepted), else it waits another Master_Down_Interval (keepalived `vrrp_sync_can_goto_master`,
  installed as each member's `gate`). Once one member is MASTER the others follow at once
  (`vrrp_sync_master`).
- A member that leaves MASTER for BACKUP (a higher priority advert, a deleted VIP) takes the
  other MASTERs to BACKUP without priority 0 (`vrrp_sync_backup`).

Each member runs its own notifies as it moves; the group's notifies (`notify_master` ...,
generic `notify` with `GROUP NAME STATE 0`, the FIFO line `GROUP "G1" MASTER 0`) follow the
members', and keepalived's `VRRP_Group(G1) Syncing instances to MASTER state` precedes them.
At start-up the group's BACKUP or FAULT notify comes before the members' (`vrrp_init_state`);
at shutdown the group's STOP follows every instance's.
"""

from __future__ import annotations

from collections.abc import Sequence

from vrrpd.config.model import SyncGroupConfig
from vrrpd.core.actions import Action, LogEvent, NotifyEvent, NotifyTarget, RunNotify, State
from vrrpd.core.instance import Instance
from vrrpd.core.machine import StateMachine

# The fault key a group raises on its members while another member is down.
SYNC_FAULT = "sync"


class SyncGroup:
    """One `vrrp_sync_group`: its members (config order) and the group state."""

    def __init__(self, cfg: SyncGroupConfig, members: Sequence[Instance]) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.members = tuple(members)
        self.state = State.INIT
        for member in self.members:
            member.gate = self.can_go_master
            # keepalived: a group's `notify_priority_changes` applies to its members' FIFO lines
            member.notify_priority_changes |= cfg.notify_priority_changes

    def can_go_master(self, inst: StateMachine) -> bool:
        """keepalived `vrrp_sync_can_goto_master`: yes once the group is MASTER, else only if
        every other member wants MASTER too."""
        if self.state == State.MASTER:
            return True
        return all(m.want_master for m in self.members if m is not inst)

    def start(self, now: float) -> list[Action]:
        """Before the members start: spread faults, settle the initial state, notify it."""
        self._spread_faults(now)  # members are in INIT: no transitions, only fault keys
        self.state = State.FAULT if self._down_members() else State.BACKUP
        return [self._notify(self.state)]

    def follow(self, trigger: Instance, now: float) -> list[Action]:
        """Bring the group after `trigger`, which may just have changed state or faults."""
        if self.state in (State.INIT, State.STOP, State.DELETED):
            return []
        target = State.FAULT if self._down_members() else trigger.state
        if target == self.state or target not in (State.BACKUP, State.MASTER, State.FAULT):
            return self._spread_faults(now)  # e.g. a second member down: no state moves
        if target == State.MASTER and not self.can_go_master(trigger):
            return []  # a member entered MASTER on its own (owner): wait for the others
        actions: list[Action] = [self._log(f"Syncing instances to {target.value} state")]
        actions += self._spread_faults(now)
        for member in self.members:
            if member is not trigger:
                actions += member.sync_to(target, now, self.name)
        self.state = target
        actions.append(self._notify(target))
        return actions

    def settle(self, now: float) -> list[Action]:
        """After a manual request moved every member: adopt their common state and notify."""
        states = {m.state for m in self.members}
        if len(states) != 1 or self.state in states:
            return []
        (target,) = states
        if target not in (State.BACKUP, State.MASTER):
            return []
        self.state = target
        return [self._log(f"Syncing instances to {target.value} state"), self._notify(target)]

    def stop(self) -> list[Action]:
        """SIGTERM: the group's STOP notify, after every instance's (keepalived order)."""
        if self.state in (State.STOP, State.DELETED):
            return []
        self.state = State.STOP
        return [self._notify(State.STOP)]

    def _down_members(self) -> list[Instance]:
        """Members with a fault of their own (not only the group's)."""
        return [m for m in self.members if any(k != SYNC_FAULT for k in m.faults)]

    def _spread_faults(self, now: float) -> list[Action]:
        """Every member carries SYNC_FAULT exactly while another member is down."""
        down = self._down_members()
        actions: list[Action] = []
        for member in self.members:
            others = [m.name for m in down if m is not member]
            reason = f"sync group {self.name}: {', '.join(others)} in FAULT" if others else None
            if member.faults.get(SYNC_FAULT) != reason:
                actions += member.set_fault(SYNC_FAULT, reason, now)
        return actions

    def _log(self, message: str) -> LogEvent:
        return LogEvent(self.name, message, group=True)

    def _notify(self, state: State) -> RunNotify:
        return RunNotify(NotifyTarget.GROUP, self.name, NotifyEvent(state.value), 0)
