"""SIGHUP reload in the pure core with literal times (keepalived.md 3.2 "HUP (RELOAD)").

Two VRRPv2 instances at priority 100 with 1 s adverts on eth0 (Master_Down_Interval = 3 +
156/256 s): VI_1 (VRID 51, 192.0.2.10) and VI_2 (VRID 52, 192.0.2.20). Both are MASTER from
t = DOWN; each reload happens at t = 10. The peer router is 192.0.2.2.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from vrrpd.config.model import (
    Command,
    Config,
    InstanceConfig,
    NotifySpec,
    RouteSpec,
    ScriptSpec,
    SyncGroupConfig,
    TrackRef,
    VipSpec,
)
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
from vrrpd.core.emit import advert_for, send_advert
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.core.reload import carry_scripts, match_key, plan, restate
from vrrpd.core.tracking import FaultChange, PriorityDelta, Status, Tracking
from vrrpd.errors import DropReason, Location
from vrrpd.proto.advert import Datagram
from vrrpd.proto.constants import VRRP_GROUP4
from vrrpd.proto.packet import encode

DOWN = 3 + 156 / 256
T = 10.0
SRC = IPv4Address("192.0.2.1")
PEER = IPv4Address("192.0.2.2")
ETH0 = LinkState("eth0", 7, True, SRC)


def vip(addr: str, line: int = 0) -> VipSpec:
    return VipSpec(IPv4Interface(addr), location=Location("k.conf", line, 9))


VI_1 = InstanceConfig(name="VI_1", vrid=51, interface="eth0", vips=(vip("192.0.2.10/32"),))
VI_2 = InstanceConfig(name="VI_2", vrid=52, interface="eth0", vips=(vip("192.0.2.20/32"),))
VI_3 = InstanceConfig(name="VI_3", vrid=53, interface="eth0", vips=(vip("192.0.2.30/32"),))


def running(
    *cfgs: InstanceConfig, groups: tuple[SyncGroupConfig, ...] = (), **kw: object
) -> Engine:
    """Started, every instance MASTER after one Master_Down_Interval, its second gratuitous ARP
    burst sent 5 s later; the next adverts are due at DOWN + 6 (before T)."""
    eng = Engine(Config(instances=cfgs or (VI_1, VI_2), sync_groups=groups, **kw))  # type: ignore[arg-type]
    eng.on_link(ETH0, 0.0)
    eng.start(0.0)
    eng.on_timer(DOWN)
    eng.on_timer(DOWN + 5)
    assert {i.state for i in eng.instances.values()} == {State.MASTER}
    return eng


def reload(eng: Engine, *cfgs: InstanceConfig, **kw: object) -> list[Action]:
    return eng.reload(Config(instances=cfgs, **kw), T)  # type: ignore[arg-type]


def sent(cfg: InstanceConfig, priority: int = 100) -> SendAdvert:
    return send_advert(cfg, SRC, advert_for(cfg, priority))


def notify(name: str, event: NotifyEvent, priority: int = 100) -> RunNotify:
    return RunNotify(NotifyTarget.INSTANCE, name, event, priority)


def peer_advert(cfg: InstanceConfig, priority: int) -> Datagram:
    data = encode(advert_for(cfg, priority), PEER, VRRP_GROUP4)
    return Datagram(data, PEER, VRRP_GROUP4, ETH0.ifindex, 255)


def backup_of_peer(eng: Engine, cfg: InstanceConfig, at: float = 9.0) -> None:
    """Make `cfg` BACKUP: the peer advertises with priority 150."""
    eng.receive_datagram(peer_advert(cfg, 150), at)
    assert eng.instances[cfg.name].state == State.BACKUP


def states(eng: Engine) -> dict[str, State]:
    return {name: inst.state for name, inst in eng.instances.items()}


# -- matching -----------------------------------------------------------------------------------


def test_matching_ignores_the_name_and_looks_at_what_keepalived_compares():
    renamed = replace(VI_1, name="WEB", priority=50, vips=())
    assert match_key(renamed) == match_key(VI_1)
    for other in (
        replace(VI_1, vrid=52),
        replace(VI_1, interface="eth1"),
        replace(VI_1, family=6),
        replace(VI_1, mcast_group=IPv4Address("224.0.0.19")),
    ):
        assert match_key(other) != match_key(VI_1)


def test_unicast_instances_are_matched_by_their_source_address():
    from vrrpd.config.model import UnicastPeer

    peers = (UnicastPeer(PEER),)
    a = replace(VI_1, unicast_peers=peers, src_ip=SRC)
    assert match_key(a) != match_key(VI_1)  # multicast <-> unicast is another router
    assert match_key(replace(a, src_ip=IPv4Address("192.0.2.3"))) != match_key(a)
    assert match_key(replace(a, unicast_peers=(UnicastPeer(IPv4Address("192.0.2.9")),))) == (
        match_key(a)
    )


def test_plan_prefers_the_same_name_among_equal_keys():
    eng = running()
    a, b = eng.instances["VI_1"], eng.instances["VI_2"]
    p = plan([a, b], [replace(VI_2, name="X"), replace(VI_1, name="Y"), VI_3])
    assert p.matched == ((b, replace(VI_2, name="X")), (a, replace(VI_1, name="Y")))
    assert p.removed == ()
    assert p.added == (VI_3,)


# -- matched instances --------------------------------------------------------------------------


def test_unchanged_config_only_advertises_at_once_and_moves_nothing():
    eng = running()
    moved = replace(VI_1, vips=(vip("192.0.2.10/32", line=40),))  # same line, elsewhere in the file
    assert reload(eng, moved, VI_2) == [sent(VI_1), sent(VI_2)]
    assert states(eng) == {"VI_1": State.MASTER, "VI_2": State.MASTER}
    assert eng.next_deadline() == T + 1.0  # the next advert one interval after the reload's
    assert eng.on_timer(T + 1.0) == [sent(VI_1), sent(VI_2)]


def test_a_backup_keeps_its_running_down_timer():
    eng = running()
    backup_of_peer(eng, VI_2, at=9.5)
    assert reload(eng, VI_1, VI_2) == [sent(VI_1)]
    assert eng.instances["VI_2"].down_at == pytest.approx(9.5 + DOWN, abs=1e-9)
    assert eng.instances["VI_2"].master_addr == PEER


def test_vip_added_to_a_master_is_added_and_announced_alone_without_notify():
    eng = running()
    new_vip = vip("192.0.2.11/32")
    bigger = replace(VI_1, vips=(*VI_1.vips, new_vip))
    assert reload(eng, bigger, VI_2) == [
        sent(VI_1),
        sent(VI_2),
        LogEvent("VI_1", "setting VIPs.", detail=True),
        AddVips("VI_1", "eth0", (new_vip,)),
        Announce("VI_1", "eth0", (IPv4Address("192.0.2.11"),), 5, 0.0),
    ]
    assert eng.instances["VI_1"].state == State.MASTER
    # Later adverts carry both addresses.
    assert eng.on_timer(T + 1.0)[0] == send_advert(bigger, SRC, advert_for(bigger, 100))


def test_vip_removed_from_a_master_is_the_only_address_removed():
    eng = running(replace(VI_1, vips=(*VI_1.vips, vip("192.0.2.11/32"))), VI_2)
    assert reload(eng, VI_1, VI_2) == [
        sent(replace(VI_1, vips=(*VI_1.vips, vip("192.0.2.11/32")))),
        sent(VI_2),
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", (vip("192.0.2.11/32"),)),
    ]


def test_vip_changes_on_a_backup_touch_nothing():
    eng = running()
    backup_of_peer(eng, VI_1)
    assert reload(eng, replace(VI_1, vips=(vip("192.0.2.11/32"),)), VI_2) == [sent(VI_2)]


def test_vip_moved_between_two_masters_is_never_removed():
    """keepalived's man page: a move "may need two reloads" (the removal can run after the
    addition). Here the removal is dropped: the address stays and the new owner announces it."""
    moving = vip("192.0.2.11/32")
    eng = running(replace(VI_1, vips=(*VI_1.vips, moving)), VI_2)
    actions = reload(eng, VI_1, replace(VI_2, vips=(*VI_2.vips, moving)))
    assert actions == [
        sent(replace(VI_1, vips=(*VI_1.vips, moving))),
        sent(VI_2),
        LogEvent("VI_2", "setting VIPs.", detail=True),
        AddVips("VI_2", "eth0", (moving,)),
        Announce("VI_2", "eth0", (IPv4Address("192.0.2.11"),), 5, 0.0),
    ]
    assert not any(isinstance(a, DelVips) for a in actions)


def test_vip_moved_to_a_backup_instance_is_removed():
    moving = vip("192.0.2.11/32")
    eng = running(replace(VI_1, vips=(*VI_1.vips, moving)), VI_2)
    backup_of_peer(eng, VI_2)
    assert reload(eng, VI_1, replace(VI_2, vips=(*VI_2.vips, moving)))[-1] == DelVips(
        "VI_1", "eth0", (moving,)
    )


def test_vip_moved_from_a_removed_master_stays_where_the_other_master_adds_it():
    eng = running()
    actions = reload(eng, replace(VI_1, vips=(*VI_1.vips, *VI_2.vips)))
    assert actions == [
        sent(VI_1),
        sent(VI_2),
        sent(VI_2, 0),
        LogEvent("VI_2", "sent 0 priority", detail=True),
        StateChanged("VI_2", State.MASTER, State.DELETED, "removed from the configuration"),
        notify("VI_2", NotifyEvent.FAULT),
        LogEvent("VI_1", "setting VIPs.", detail=True),
        AddVips("VI_1", "eth0", VI_2.vips),
        Announce("VI_1", "eth0", (IPv4Address("192.0.2.20"),), 5, 0.0),
    ]


def test_routes_follow_the_same_diff():
    r1 = RouteSpec(("198.51.100.0/24", "via", "192.0.2.254"), dst="198.51.100.0/24")
    r2 = RouteSpec(("203.0.113.0/24", "via", "192.0.2.254"), dst="203.0.113.0/24")
    eng = running(replace(VI_1, virtual_routes=(r1,)), VI_2)
    actions = reload(eng, replace(VI_1, virtual_routes=(r2,)), VI_2)
    assert actions[2:] == [
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", (), (r1,)),
        LogEvent("VI_1", "setting VIPs.", detail=True),
        AddVips("VI_1", "eth0", (), (r2,)),
    ]


def test_renamed_instance_is_the_same_router_no_transition_no_notify():
    eng = running()
    eng.instances["VI_1"].stats.advert_rcvd = 7
    web = replace(VI_1, name="WEB")
    assert reload(eng, web, VI_2) == [sent(VI_1), sent(VI_2)]
    assert states(eng) == {"WEB": State.MASTER, "VI_2": State.MASTER}
    assert eng.instances["WEB"].stats.advert_rcvd == 7
    assert [s.name for s in eng.status()] == ["WEB", "VI_2"]
    # Adverts are routed to it under its new name.
    actions = eng.receive_datagram(peer_advert(web, 150), T + 0.5)
    assert StateChanged("WEB", State.MASTER, State.BACKUP, "higher priority advert") in actions


def test_priority_lowered_on_a_master_is_advertised_at_once():
    eng = running()
    low = replace(VI_1, priority=50)
    assert reload(eng, low, VI_2) == [
        sent(VI_1),
        sent(VI_2),
        PriorityChanged("VI_1", 100, 50),
        LogEvent("VI_1", "Changing effective priority from 100 to 50"),
        sent(low, 50),
    ]
    assert eng.instances["VI_1"].state == State.MASTER  # the peer preempts by the protocol
    actions = eng.receive_datagram(peer_advert(low, 90), T + 0.5)
    assert StateChanged("VI_1", State.MASTER, State.BACKUP, "higher priority advert") in actions


def test_priority_raised_on_a_backup_re_times_its_down_timer():
    eng = running()
    backup_of_peer(eng, VI_1, at=9.0)
    high = replace(VI_1, priority=200)
    assert reload(eng, high, VI_2) == [
        sent(VI_2),
        PriorityChanged("VI_1", 100, 200),
        LogEvent("VI_1", "Changing effective priority from 100 to 200"),
    ]
    assert eng.instances["VI_1"].down_at == pytest.approx(9.0 + 3 + 56 / 256, abs=1e-9)


def test_a_runtime_priority_override_survives_a_reload():
    eng = running()
    eng.override_priority("VI_1", 120, 9.0)
    assert reload(eng, replace(VI_1, priority=90), VI_2) == [sent(VI_1, 120), sent(VI_2)]
    assert eng.instances["VI_1"].effective_priority == 120


def test_interval_changed_on_a_master_spaces_the_next_adverts():
    eng = running()
    slow = replace(VI_1, advert_int_cs=200)
    assert reload(eng, slow, VI_2) == [sent(VI_1), sent(VI_2)]
    assert eng.on_timer(T + 1.0) == [sent(VI_2)]
    assert eng.on_timer(T + 2.0) == [sent(slow), sent(VI_2)]


def test_interval_changed_on_a_backup_re_times_its_down_timer():
    eng = running()
    backup_of_peer(eng, VI_1, at=9.0)
    reload(eng, replace(VI_1, advert_int_cs=200), VI_2)
    assert eng.instances["VI_1"].down_at == pytest.approx(9.0 + 6 + 156 / 256, abs=1e-9)


def test_dont_track_primary_added_by_reload_clears_the_link_fault():
    eng = running()
    eng.on_link(replace(ETH0, up=False), 9.0)
    assert eng.instances["VI_1"].state == State.FAULT
    actions = reload(eng, replace(VI_1, track_primary=False), VI_2)
    assert actions == [
        StateChanged("VI_1", State.FAULT, State.BACKUP, "fault cleared"),
        LogEvent("VI_1", "Entering BACKUP STATE"),
        notify("VI_1", NotifyEvent.BACKUP),
    ]


def test_tracker_no_longer_referenced_gives_its_weight_back():
    chk = ScriptSpec("chk", ("/bin/true",), weight=-20)
    tracked = replace(VI_1, track_scripts=(TrackRef("chk"),))
    eng = running(tracked, VI_2, scripts=(chk,))
    eng.set_priority("VI_1", 9.0, delta=("script:chk", -20))
    eng.set_fault("VI_2", "script:gone", "tracked script gone failed", 9.5)
    actions = reload(eng, VI_1, VI_2, scripts=(chk,))
    assert actions == [
        sent(tracked, 80),
        PriorityChanged("VI_1", 80, 100),
        LogEvent("VI_1", "Changing effective priority from 80 to 100"),
        sent(VI_1, 100),
        StateChanged("VI_2", State.FAULT, State.BACKUP, "fault cleared"),
        LogEvent("VI_2", "Entering BACKUP STATE"),
        notify("VI_2", NotifyEvent.BACKUP),
    ]


def test_tracker_still_referenced_keeps_its_contribution():
    chk = ScriptSpec("chk", ("/bin/true",), weight=-20)
    tracked = replace(VI_1, track_scripts=(TrackRef("chk"),))
    eng = running(tracked, VI_2, scripts=(chk,))
    eng.set_priority("VI_1", 9.0, delta=("script:chk", -20))
    assert reload(eng, replace(tracked, name="WEB"), VI_2, scripts=(chk,)) == [
        sent(tracked, 80),
        sent(VI_2),
    ]
    assert eng.instances["WEB"].effective_priority == 80


# -- removed and added instances ----------------------------------------------------------------


def test_removed_master_sends_priority_zero_releases_and_notifies_fault():
    eng = running()
    assert reload(eng, VI_1) == [
        sent(VI_1),
        sent(VI_2),
        sent(VI_2, 0),
        LogEvent("VI_2", "sent 0 priority", detail=True),
        LogEvent("VI_2", "removing VIPs.", detail=True),
        DelVips("VI_2", "eth0", VI_2.vips),
        StateChanged("VI_2", State.MASTER, State.DELETED, "removed from the configuration"),
        notify("VI_2", NotifyEvent.FAULT),
    ]
    assert list(eng.instances) == ["VI_1"]
    # Its VRID is unknown now.
    dropped = eng.receive_datagram(peer_advert(VI_2, 150), T + 0.5)
    assert [a.reason for a in dropped] == [DropReason.UNKNOWN_VRID]  # type: ignore[union-attr]


def test_removed_instance_with_notify_deleted_notifies_deleted():
    deleting = replace(VI_2, notify=NotifySpec(deleted=Command(("/bin/true",))))
    eng = running(VI_1, deleting)
    backup_of_peer(eng, deleting)
    assert reload(eng, VI_1) == [
        sent(VI_1),
        StateChanged("VI_2", State.BACKUP, State.DELETED, "removed from the configuration"),
        notify("VI_2", NotifyEvent.DELETED),
    ]


def test_new_instance_starts_as_at_boot():
    eng = running()
    assert reload(eng, VI_1, VI_2, VI_3) == [
        sent(VI_1),
        sent(VI_2),
        StateChanged("VI_3", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_3", "Entering BACKUP STATE (init)"),
        notify("VI_3", NotifyEvent.BACKUP),
    ]
    assert eng.instances["VI_3"].down_at == pytest.approx(T + DOWN, abs=1e-9)
    actions = eng.on_timer(T + DOWN)
    assert StateChanged("VI_3", State.BACKUP, State.MASTER, "master down timer expired") in actions


def test_new_owner_instance_becomes_master_at_once():
    owner = replace(VI_3, priority=255)
    actions = reload(running(), VI_1, VI_2, owner)
    assert actions[2:5] == [
        StateChanged("VI_3", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_3", "Entering BACKUP STATE (init)"),
        notify("VI_3", NotifyEvent.BACKUP, 255),
    ]
    assert StateChanged("VI_3", State.BACKUP, State.MASTER, "address owner") in actions


def test_new_instance_on_a_missing_interface_starts_in_fault():
    elsewhere = replace(VI_3, interface="eth9")
    assert reload(running(), VI_1, VI_2, elsewhere)[2:] == [
        StateChanged(
            "VI_3",
            State.INIT,
            State.FAULT,
            "interface eth9 does not exist; src address not configured",
        ),
        LogEvent("VI_3", "Entering FAULT STATE (init)"),
        notify("VI_3", NotifyEvent.FAULT),
    ]


def test_changed_vrid_is_a_removal_and_an_addition():
    eng = running()
    moved = replace(VI_2, vrid=62)
    actions = reload(eng, VI_1, moved)
    assert StateChanged("VI_2", State.MASTER, State.DELETED, "removed from the configuration") in (
        actions
    )
    assert actions[-3:] == [
        StateChanged("VI_2", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_2", "Entering BACKUP STATE (init)"),
        notify("VI_2", NotifyEvent.BACKUP),
    ]
    # The VIP is the same on both sides: released with the old router, not re-added yet.
    assert DelVips("VI_2", "eth0", VI_2.vips) in actions
    assert eng.instances["VI_2"].cfg.vrid == 62


# -- sync groups --------------------------------------------------------------------------------


G1 = SyncGroupConfig("G1", ("VI_1", "VI_2"))


def group_notify(event: NotifyEvent) -> RunNotify:
    return RunNotify(NotifyTarget.GROUP, "G1", event, 0)


def test_unchanged_sync_group_keeps_its_state_silently():
    eng = running(groups=(G1,))
    assert eng.groups["G1"].state == State.MASTER
    assert reload(eng, VI_1, VI_2, sync_groups=(G1,)) == [sent(VI_1), sent(VI_2)]
    assert eng.groups["G1"].state == State.MASTER
    assert eng.groups["G1"].members == (eng.instances["VI_1"], eng.instances["VI_2"])


def test_renamed_member_stays_in_its_renamed_group():
    eng = running(groups=(G1,))
    web = replace(VI_1, name="WEB")
    g = SyncGroupConfig("G1", ("WEB", "VI_2"))
    assert reload(eng, web, VI_2, sync_groups=(g,)) == [sent(VI_1), sent(VI_2)]
    assert eng.instances["WEB"].gate is not None


def test_new_group_over_a_master_and_a_backup_syncs_them_to_backup():
    eng = running()
    backup_of_peer(eng, VI_2)
    actions = reload(eng, VI_1, VI_2, sync_groups=(G1,))
    assert actions == [
        sent(VI_1),
        LogEvent("G1", "Syncing instances to BACKUP state", group=True),
        StateChanged("VI_1", State.MASTER, State.BACKUP, "sync group G1"),
        LogEvent("VI_1", "Entering BACKUP STATE"),
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", VI_1.vips),
        notify("VI_1", NotifyEvent.BACKUP),
        group_notify(NotifyEvent.BACKUP),
    ]


def test_member_left_the_group_is_free_again():
    eng = running(groups=(G1,))
    g = SyncGroupConfig("G1", ("VI_1",))
    assert reload(eng, VI_1, VI_2, sync_groups=(g,)) == [sent(VI_1), sent(VI_2)]
    assert eng.instances["VI_2"].gate is None
    assert eng.groups["G1"].members == (eng.instances["VI_1"],)


def test_new_member_of_a_master_group_joins_it():
    eng = running(VI_1, groups=(SyncGroupConfig("G1", ("VI_1",)),))
    g = SyncGroupConfig("G1", ("VI_1", "VI_3"))
    actions = reload(eng, VI_1, VI_3, sync_groups=(g,))
    assert actions == [
        sent(VI_1),
        StateChanged("VI_3", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_3", "Entering BACKUP STATE (init)"),
        notify("VI_3", NotifyEvent.BACKUP),
        LogEvent("G1", "Syncing instances to MASTER state", group=True),
        sent(VI_3),
        StateChanged("VI_3", State.BACKUP, State.MASTER, "sync group G1"),
        LogEvent("VI_3", "Entering MASTER STATE"),
        LogEvent("VI_3", "setting VIPs.", detail=True),
        AddVips("VI_3", "eth0", VI_3.vips),
        Announce("VI_3", "eth0", (IPv4Address("192.0.2.30"),), 5, 0.0),
        notify("VI_3", NotifyEvent.MASTER),
    ]


def test_group_of_new_instances_starts_as_at_boot():
    eng = running(VI_1)
    g = SyncGroupConfig("G2", ("VI_2", "VI_3"))
    assert reload(eng, VI_1, VI_2, VI_3, sync_groups=(g,)) == [
        sent(VI_1),
        RunNotify(NotifyTarget.GROUP, "G2", NotifyEvent.BACKUP, 0),
        StateChanged("VI_2", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_2", "Entering BACKUP STATE (init)"),
        notify("VI_2", NotifyEvent.BACKUP),
        StateChanged("VI_3", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_3", "Entering BACKUP STATE (init)"),
        notify("VI_3", NotifyEvent.BACKUP),
    ]


def test_group_member_in_fault_takes_a_new_group_into_fault():
    chk = ScriptSpec("chk", ("/bin/false",))
    tracked = replace(VI_2, track_scripts=(TrackRef("chk"),))
    eng = running(VI_1, tracked, scripts=(chk,))
    eng.set_fault("VI_2", "script:chk", "tracked script chk failed", 9.0)
    actions = reload(eng, VI_1, tracked, sync_groups=(G1,), scripts=(chk,))
    assert actions[0] == sent(VI_1)
    assert StateChanged("VI_1", State.MASTER, State.FAULT, "sync group G1: VI_2 in FAULT") in (
        actions
    )
    assert actions[-1] == group_notify(NotifyEvent.FAULT)
    assert eng.groups["G1"].state == State.FAULT


# -- trackers across a restart ------------------------------------------------------------------


def test_script_results_survive_a_restart_by_name():
    cfg = Config(
        instances=(replace(VI_1, track_scripts=(TrackRef("up"), TrackRef("down"))),),
        scripts=(
            ScriptSpec("up", ("/bin/true",), weight=10),
            ScriptSpec("down", ("/bin/false",), weight=-20, rise=2, fall=2),
        ),
    )
    old = Tracking(cfg)
    old.start({}, {}, {})
    old.script_result("up", rc=0)
    old.script_result("down", rc=1)
    new = Tracking(cfg)
    assert carry_scripts(old, new) == ["VRRP_Script(up) considered successful on reload"]
    assert (new.counters["up"].status, new.counters["down"].status) == (Status.GOOD, Status.BAD)
    update = restate(new, new.start({}, {}, {}))
    assert update.changes == [
        PriorityDelta("VI_1", "script:up", 10),
        PriorityDelta("VI_1", "script:down", -20),
        FaultChange("VI_1", "script:up", None),
        FaultChange("VI_1", "script:down", None),
    ]


def test_restate_raises_faults_before_priorities_move():
    cfg = Config(
        instances=(replace(VI_1, track_scripts=(TrackRef("gate"), TrackRef("w"))),),
        scripts=(ScriptSpec("gate", ("/bin/true",)), ScriptSpec("w", ("/bin/true",), weight=5)),
    )
    tracking = Tracking(cfg)
    update = restate(tracking, tracking.start({}, {}, {}))  # both INIT: gate holds FAULT
    assert update.changes == [
        FaultChange("VI_1", "script:gate", "tracked script gate has not returned yet"),
        PriorityDelta("VI_1", "script:gate", 0),
        PriorityDelta("VI_1", "script:w", 0),
        FaultChange("VI_1", "script:w", None),
    ]


def test_a_tracker_change_sent_just_before_a_reload_is_dropped_with_its_tracker():
    """A script loop may report between the engine's reload and its own restart: a change for a
    tracker the new configuration no longer references must not reach the engine."""
    from types import SimpleNamespace

    from vrrpd.runtime.trackers import TrackerService

    chk = ScriptSpec("chk", ("/bin/false",), weight=-20)
    tracked = replace(VI_1, track_scripts=(TrackRef("chk"),))
    old = Config(instances=(tracked, VI_2), scripts=(chk,))
    eng = running(tracked, VI_2, scripts=(chk,))
    runtime = SimpleNamespace(config=old, engine=eng)
    service = TrackerService(runtime)  # type: ignore[arg-type]
    late = (PriorityDelta("VI_1", "script:chk", -20),)
    new = Config(instances=(VI_1, VI_2), scripts=(chk,))
    eng.reload(new, T)
    runtime.config = new
    assert service._engine_apply(late, T + 0.1) == []
    assert eng.instances["VI_1"].effective_priority == 100
    # Before the reload the same change counts.
    eng2 = running(tracked, VI_2, scripts=(chk,))
    service2 = TrackerService(SimpleNamespace(config=old, engine=eng2))  # type: ignore[arg-type]
    assert PriorityChanged("VI_1", 100, 80) in service2._engine_apply(late, T)
