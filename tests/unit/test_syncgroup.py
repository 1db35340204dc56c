"""vrrp_sync_group with literal times: members move together (keepalived 2.2.x `vrrp_sync.c`).

Two members at priority 100, VRRPv2 with 1 s adverts: Master_Down_Interval = 3 + 156/256 s.
VI_1 runs on eth0 (VRID 51), VI_2 on eth1 (VRID 52); the group is G1.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from vrrpd.config.model import Config, InstanceConfig, SyncGroupConfig, VipSpec
from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
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
from vrrpd.core.emit import advert_for
from vrrpd.core.engine import Engine, ManualError
from vrrpd.core.inputs import LinkState
from vrrpd.proto.advert import Datagram
from vrrpd.proto.constants import VRRP_GROUP4
from vrrpd.proto.packet import encode

DOWN = 3 + 156 / 256
PEER = {"VI_1": IPv4Address("192.0.2.2"), "VI_2": IPv4Address("198.51.100.2")}
LINKS = {
    "VI_1": LinkState("eth0", 7, True, IPv4Address("192.0.2.1")),
    "VI_2": LinkState("eth1", 8, True, IPv4Address("198.51.100.1")),
}
CFG = {
    "VI_1": InstanceConfig(
        name="VI_1", vrid=51, interface="eth0", vips=(VipSpec(IPv4Interface("192.0.2.10/32")),)
    ),
    "VI_2": InstanceConfig(
        name="VI_2",
        vrid=52,
        interface="eth1",
        vips=(VipSpec(IPv4Interface("198.51.100.10/32")),),
    ),
}


def engine(links: tuple[str, ...] = ("VI_1", "VI_2"), **group: object) -> Engine:
    gcfg = replace(SyncGroupConfig("G1", ("VI_1", "VI_2")), **group)  # type: ignore[arg-type]
    eng = Engine(Config(instances=tuple(CFG.values()), sync_groups=(gcfg,)))
    for name in links:
        eng.on_link(LINKS[name], 0.0)
    return eng


def started() -> Engine:
    eng = engine()
    eng.start(0.0)
    return eng


def both_master() -> Engine:
    eng = started()
    eng.on_timer(DOWN)
    assert {i.state for i in eng.instances.values()} == {State.MASTER}
    return eng


def advert_from_peer(name: str, priority: int) -> Datagram:
    data = encode(advert_for(CFG[name], priority), PEER[name], VRRP_GROUP4)
    return Datagram(data, PEER[name], VRRP_GROUP4, LINKS[name].ifindex, 255)


def sent(name: str, priority: int) -> SendAdvert:
    cfg, src = CFG[name], LINKS[name].addr4
    return SendAdvert(
        name, cfg.interface or "", advert_for(cfg, priority), src, (VRRP_GROUP4,), 255
    )


def notify(name: str, event: NotifyEvent, priority: int = 100) -> RunNotify:
    return RunNotify(NotifyTarget.INSTANCE, name, event, priority)


def group_notify(event: NotifyEvent) -> RunNotify:
    return RunNotify(NotifyTarget.GROUP, "G1", event, 0)


def syncing(state: str) -> LogEvent:
    return LogEvent("G1", f"Syncing instances to {state} state", group=True)


def master_entry(name: str, old: State, reason: str) -> list[Action]:
    cfg = CFG[name]
    return [
        sent(name, 100),
        StateChanged(name, old, State.MASTER, reason),
        LogEvent(name, "Entering MASTER STATE"),
        LogEvent(name, "setting VIPs.", detail=True),
        AddVips(name, cfg.interface or "", cfg.vips),
        Announce(name, cfg.interface or "", tuple(v.ip for v in cfg.vips), 5, 0.0),
        notify(name, NotifyEvent.MASTER),
    ]


def master_exit(name: str, new: State, reason: str, *, stop: bool) -> list[Action]:
    cfg = CFG[name]
    return [
        *([sent(name, 0)] if stop else []),
        StateChanged(name, State.MASTER, new, reason),
        LogEvent(name, f"Entering {new.value} STATE"),
        LogEvent(name, "removing VIPs.", detail=True),
        DelVips(name, cfg.interface or "", cfg.vips),
        notify(name, NotifyEvent(new.value)),
    ]


def entered(name: str, old: State, new: State, reason: str, init: bool = False) -> list[Action]:
    suffix = " (init)" if init else ""
    return [
        StateChanged(name, old, new, reason),
        LogEvent(name, f"Entering {new.value} STATE{suffix}"),
        notify(name, NotifyEvent(new.value)),
    ]


def test_start_notifies_the_group_before_its_members():
    assert engine().start(0.0) == [
        group_notify(NotifyEvent.BACKUP),
        *entered("VI_1", State.INIT, State.BACKUP, "init", init=True),
        *entered("VI_2", State.INIT, State.BACKUP, "init", init=True),
    ]


def test_one_member_down_at_start_holds_the_whole_group_in_fault():
    eng = engine(links=("VI_1",))  # eth1 does not exist yet
    assert eng.start(0.0) == [
        group_notify(NotifyEvent.FAULT),
        *entered("VI_1", State.INIT, State.FAULT, "sync group G1: VI_2 in FAULT", init=True),
        *entered(
            "VI_2",
            State.INIT,
            State.FAULT,
            "interface eth1 does not exist; src address not configured",
            init=True,
        ),
    ]
    assert eng.on_link(LINKS["VI_2"], 2.0) == [
        *entered("VI_2", State.FAULT, State.BACKUP, "fault cleared"),
        syncing("BACKUP"),
        *entered("VI_1", State.FAULT, State.BACKUP, "fault cleared"),
        group_notify(NotifyEvent.BACKUP),
    ]


def test_members_go_master_together_once_every_member_wants_to():
    eng = started()
    assert eng.on_timer(DOWN) == [
        # VI_1's timer runs out first, but VI_2 does not want MASTER yet: VI_1 waits.
        LogEvent("VI_1", "Receive advertisement timeout", detail=True),
        LogEvent("VI_2", "Receive advertisement timeout", detail=True),
        *master_entry("VI_2", State.BACKUP, "master down timer expired"),
        syncing("MASTER"),
        *master_entry("VI_1", State.BACKUP, "sync group G1"),
        group_notify(NotifyEvent.MASTER),
    ]
    assert eng.groups["G1"].state == State.MASTER


def test_no_member_goes_master_while_another_still_hears_its_master():
    eng = started()
    for t in (0.5, 1.5, 2.5, 3.5):
        eng.receive_datagram(advert_from_peer("VI_2", 150), t)
    assert eng.on_timer(DOWN) == [LogEvent("VI_1", "Receive advertisement timeout", detail=True)]
    assert eng.instances["VI_1"].state == State.BACKUP
    assert eng.instances["VI_1"].down_at == pytest.approx(2 * DOWN, abs=1e-9)
    # VI_2's master goes silent: when VI_2's timer runs out, VI_1 still wants MASTER.
    actions = eng.on_timer(3.5 + DOWN)
    assert actions[0] == LogEvent("VI_2", "Receive advertisement timeout", detail=True)
    assert actions[-1] == group_notify(NotifyEvent.MASTER)
    assert {i.state for i in eng.instances.values()} == {State.MASTER}


def test_an_accepted_advert_withdraws_a_members_wish():
    eng = started()
    eng.receive_datagram(advert_from_peer("VI_2", 150), 3.0)
    eng.on_timer(DOWN)  # VI_1 wants MASTER, VI_2 does not
    eng.receive_datagram(advert_from_peer("VI_1", 150), 4.0)  # VI_1 hears a master again
    assert not eng.instances["VI_1"].want_master
    actions = eng.on_timer(3.0 + DOWN)  # VI_2's timer: VI_1 no longer wants it
    assert actions == [LogEvent("VI_2", "Receive advertisement timeout", detail=True)]


def test_member_fault_takes_the_group_to_fault_and_back():
    eng = both_master()
    assert eng.set_fault("VI_1", "script:chk", "script chk failed", 10.0) == [
        *master_exit("VI_1", State.FAULT, "script chk failed", stop=True),
        syncing("FAULT"),
        *master_exit("VI_2", State.FAULT, "sync group G1: VI_1 in FAULT", stop=True),
        group_notify(NotifyEvent.FAULT),
    ]
    assert eng.next_deadline() is None
    assert eng.set_fault("VI_1", "script:chk", None, 20.0) == [
        *entered("VI_1", State.FAULT, State.BACKUP, "fault cleared"),
        syncing("BACKUP"),
        *entered("VI_2", State.FAULT, State.BACKUP, "fault cleared"),
        group_notify(NotifyEvent.BACKUP),
    ]
    assert eng.next_deadline() == pytest.approx(20.0 + DOWN, abs=1e-9)


def test_group_leaves_fault_only_when_no_member_is_down():
    eng = started()
    eng.set_fault("VI_1", "script:a", "script a failed", 1.0)
    assert eng.set_fault("VI_2", "script:b", "script b failed", 2.0) == []  # already FAULT
    assert eng.set_fault("VI_1", "script:a", None, 3.0) == []  # VI_2 still down
    assert eng.instances["VI_1"].faults == {"sync": "sync group G1: VI_2 in FAULT"}
    actions = eng.set_fault("VI_2", "script:b", None, 4.0)
    assert actions[-1] == group_notify(NotifyEvent.BACKUP)
    assert {i.state for i in eng.instances.values()} == {State.BACKUP}


def test_member_yielding_to_higher_priority_takes_the_others_to_backup():
    eng = both_master()
    actions = eng.receive_datagram(advert_from_peer("VI_1", 150), 10.0)
    assert actions == [
        LogEvent(
            "VI_1", "Master received advert from 192.0.2.2 with higher priority 150, ours 100"
        ),
        *master_exit("VI_1", State.BACKUP, "higher priority advert", stop=False),
        syncing("BACKUP"),
        *master_exit("VI_2", State.BACKUP, "sync group G1", stop=False),
        group_notify(NotifyEvent.BACKUP),
    ]


def test_resign_and_takeover_move_the_whole_group():
    eng = both_master()
    actions = eng.resign("VI_2", 10.0, 5.0, who="ops")
    assert [a for a in actions if isinstance(a, StateChanged)] == [
        StateChanged("VI_1", State.MASTER, State.BACKUP, "resign requested by ops"),
        StateChanged("VI_2", State.MASTER, State.BACKUP, "resign requested by ops"),
    ]
    assert sum(isinstance(a, SendAdvert) and a.advert.priority == 0 for a in actions) == 2
    assert actions[-2:] == [syncing("BACKUP"), group_notify(NotifyEvent.BACKUP)]
    actions = eng.takeover("VI_1", 11.0)
    assert [a for a in actions if isinstance(a, PriorityChanged)] == [
        PriorityChanged("VI_1", 1, 254),
        PriorityChanged("VI_2", 1, 254),
    ]
    assert actions[-2:] == [syncing("MASTER"), group_notify(NotifyEvent.MASTER)]
    assert {i.state for i in eng.instances.values()} == {State.MASTER}


def test_manual_request_refused_when_a_member_cannot_follow():
    eng = started()
    eng.set_fault("VI_2", "script:b", "script b failed", 1.0)
    with pytest.raises(ManualError, match=r"\(VI_1\) cannot take over in FAULT state"):
        eng.takeover("VI_1", 2.0)


def test_shutdown_stops_instances_then_the_group():
    eng = both_master()
    actions = eng.shutdown(10.0)
    notifies = [a for a in actions if isinstance(a, RunNotify)]
    assert notifies == [
        notify("VI_1", NotifyEvent.STOP),
        notify("VI_2", NotifyEvent.STOP),
        group_notify(NotifyEvent.STOP),
    ]


def test_group_notify_priority_changes_applies_to_members():
    eng = engine(notify_priority_changes=True)
    eng.start(0.0)
    assert eng.set_priority("VI_2", 1.0, delta=("script:w", -10)) == [
        PriorityChanged("VI_2", 100, 90),
        LogEvent("VI_2", "Changing effective priority from 100 to 90"),
        notify("VI_2", NotifyEvent.BACKUP_PRIORITY, 90),
    ]


def test_status_names_the_group():
    assert [s.sync_group for s in started().status()] == ["G1", "G1"]
