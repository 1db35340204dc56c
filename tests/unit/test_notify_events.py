"""Which notify events the core emits and with what priority (keepalived `vrrp_notify.c`)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from vrrpd.config.model import Command, Config, InstanceConfig, NotifySpec, VipSpec
from vrrpd.core.actions import (
    DelVips,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    PriorityChanged,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState

VIP = VipSpec(IPv4Interface("192.0.2.10/32"))
DOWN = 3 + 156 / 256


def engine(**kw: object) -> Engine:
    cfg = InstanceConfig(name="VI_1", vrid=51, interface="eth0", vips=(VIP,), **kw)  # type: ignore[arg-type]
    eng = Engine(Config(instances=(cfg,)))
    eng.on_link(LinkState("eth0", 7, True, IPv4Address("192.0.2.1")), 0.0)
    eng.start(0.0)
    return eng


def run_notify(event: NotifyEvent, priority: int = 100) -> RunNotify:
    return RunNotify(NotifyTarget.INSTANCE, "VI_1", event, priority)


def test_deleted_master_sends_priority_zero_and_notifies_fault_by_default():
    eng = engine()
    eng.on_timer(DOWN)
    actions = eng.instances["VI_1"].delete(10.0)
    assert isinstance(actions[0], SendAdvert) and actions[0].advert.priority == 0
    assert actions[1:] == [
        LogEvent("VI_1", "sent 0 priority", detail=True),
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", (VIP,)),
        StateChanged("VI_1", State.MASTER, State.DELETED, "removed from the configuration"),
        run_notify(NotifyEvent.FAULT),
    ]
    assert eng.instances["VI_1"].next_deadline() is None


def test_deleted_with_notify_deleted_notifies_deleted():
    eng = engine(notify=NotifySpec(deleted=Command(("/bin/true",))))
    assert eng.instances["VI_1"].delete(1.0) == [
        StateChanged("VI_1", State.BACKUP, State.DELETED, "removed from the configuration"),
        run_notify(NotifyEvent.DELETED),
    ]


def test_priority_changes_reach_the_fifo_only_when_asked():
    quiet = engine()
    assert run_notify(NotifyEvent.BACKUP_PRIORITY, 90) not in quiet.set_priority(
        "VI_1", 1.0, delta=("script:x", -10)
    )
    eng = engine(notify_priority_changes=True)
    assert eng.set_priority("VI_1", 1.0, delta=("script:x", -10))[-1] == run_notify(
        NotifyEvent.BACKUP_PRIORITY, 90
    )
    eng.on_timer(3 + 166 / 256)  # the running down timer, re-timed for 90
    assert eng.set_priority("VI_1", 5.0, delta=("script:x", 0))[:3] == [
        PriorityChanged("VI_1", 90, 100),
        LogEvent("VI_1", "Changing effective priority from 90 to 100"),
        run_notify(NotifyEvent.MASTER_PRIORITY, 100),
    ]


def test_notify_carries_the_effective_priority():
    eng = engine()
    eng.set_priority("VI_1", 1.0, delta=("script:x", -30))
    actions = eng.on_timer(3 + 186 / 256)
    assert run_notify(NotifyEvent.MASTER, 70) in actions
