"""MASTER behaviour with literal times (RFC 5798 / RFC 9568 6.4.3; UNH-IOL 2.5-2.7, 3.1)."""

import pytest
from core_builders import (
    HIGHER_IP,
    LOWER_IP,
    OURS,
    make_instance,
    removed,
    sent,
    v2_advert,
    v3_advert,
)

from vrrpd.config.model import GarpSpec
from vrrpd.core.actions import (
    Announce,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    PriorityChanged,
    RunNotify,
    State,
    StateChanged,
)
from vrrpd.core.instance import Instance, TransitionError

VIPS = (OURS.__class__("192.0.2.10"),)


def master(**kw: object) -> Instance:
    inst = make_instance(**kw)
    inst.start(0.0)
    inst.on_timer(inst.down_at or 0.0)
    assert inst.state == State.MASTER
    return inst


def test_master_advertises_on_a_fixed_grid():
    """The advert slot's grid (phase 0 for a lone instance): the advert after entering MASTER
    (at 0.3609375 s) is the next grid point, at most one interval later, then every 100 ms."""
    inst = master(version=3, advert_int_cs=10)
    t0 = inst.last_transition_at
    assert t0 == pytest.approx(0.3609375)
    assert inst.adver_at == pytest.approx(0.4)
    assert inst.on_timer(0.4) == [sent(inst, 100)]
    assert inst.adver_at == pytest.approx(0.5)
    # a late tick (0.5 + 3 ms) keeps the grid instead of drifting
    assert inst.on_timer(0.503) == [sent(inst, 100)]
    assert inst.adver_at == pytest.approx(0.6)
    # a tick more than an interval late skips the missed slots
    assert inst.on_timer(0.75) == [sent(inst, 100)]
    assert inst.adver_at == pytest.approx(0.8)


def test_priority_zero_heard_by_master_gets_an_immediate_advert():
    inst = master()
    assert inst.on_advert(v2_advert(0), HIGHER_IP, 5.0) == [sent(inst, 100)]
    assert inst.state == State.MASTER


def test_master_yields_to_higher_priority_without_priority_zero():
    inst = master()
    actions = inst.on_advert(v2_advert(150), LOWER_IP, 5.0)
    assert actions == [
        LogEvent(
            "VI_1", "Master received advert from 192.0.2.0 with higher priority 150, ours 100"
        ),
        StateChanged("VI_1", State.MASTER, State.BACKUP, "higher priority advert"),
        LogEvent("VI_1", "Entering BACKUP STATE"),
        *removed(inst),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.BACKUP, 100),
    ]
    assert inst.stats.release_master == 1
    assert inst.down_at == pytest.approx(5.0 + 3 + 156 / 256, abs=1e-9)


def test_equal_priority_higher_address_wins():
    inst = master()
    actions = inst.on_advert(v2_advert(100), HIGHER_IP, 5.0)
    assert actions[0] == LogEvent(
        "VI_1",
        "Master received advert from 192.0.2.200 with same priority 100"
        " but higher IP address than ours",
    )
    assert inst.state == State.BACKUP


def test_lower_priority_is_answered_with_advert_garp_and_notify():
    inst = master()
    actions = inst.on_advert(v2_advert(90), HIGHER_IP, 5.0)
    assert actions == [
        LogEvent(
            "VI_1",
            "Received advert from 192.0.2.200 with lower priority 90, ours 100,"
            " forcing new election",
        ),
        sent(inst, 100),
        Announce("VI_1", "eth0", VIPS, 5, 0.0),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.MASTER_RX_LOWER_PRI, 100),
    ]
    assert inst.lower_garp_at == pytest.approx(10.0)
    assert inst.state == State.MASTER


def test_equal_priority_lower_address_is_answered_as_lower():
    inst = master()
    assert inst.on_advert(v2_advert(100), LOWER_IP, 5.0)[1] == sent(inst, 100)
    assert inst.state == State.MASTER


def test_lower_prio_no_advert_suppresses_the_answer():
    inst = master(lower_prio_no_advert=True, garp=GarpSpec(lower_prio_repeat=0))
    actions = inst.on_advert(v2_advert(90), HIGHER_IP, 5.0)
    assert [type(a).__name__ for a in actions] == ["LogEvent", "RunNotify"]


def test_higher_prio_send_advert_sends_one_before_yielding():
    inst = master(higher_prio_send_advert=True)
    actions = inst.on_advert(v2_advert(150), LOWER_IP, 5.0)
    assert actions[1] == sent(inst, 100)
    assert isinstance(actions[2], StateChanged)


def test_v3_master_yielding_adopts_the_new_masters_interval():
    inst = master(version=3, advert_int_cs=100)
    inst.on_advert(v3_advert(200, adver_int_cs=50), HIGHER_IP, 5.0)
    assert inst.master_adver_int_cs == 50


def test_gratuitous_arp_second_burst_and_refresh():
    inst = master(garp=GarpSpec(master_delay_s=5.0, master_refresh_s=60.0, master_refresh_repeat=2))
    t0 = inst.last_transition_at
    assert inst.garp_at == pytest.approx(t0 + 5.0)
    assert Announce("VI_1", "eth0", VIPS, 5, 0.0) in inst.on_timer(t0 + 5.0)
    assert inst.garp_at is None
    assert Announce("VI_1", "eth0", VIPS, 2, 0.0) in inst.on_timer(t0 + 60.0)
    assert inst.refresh_at == pytest.approx(t0 + 120.0)


def test_shutdown_sends_priority_zero_then_removes_vips_then_stop_notify():
    inst = master()
    assert inst.shutdown_release(9.0) == [
        sent(inst, 0),
        LogEvent("VI_1", "sent 0 priority", detail=True),
        *removed(inst),
    ]
    assert inst.shutdown_stop(9.0) == [
        StateChanged("VI_1", State.MASTER, State.STOP, "shutdown"),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.STOP, 100),
    ]
    assert inst.stats.pri_zero_sent == 1
    assert inst.next_deadline() is None


def test_fault_from_master_sends_priority_zero_unless_the_link_is_down():
    inst = master()
    actions = inst.set_fault("script:chk", "script chk failed", 7.0)
    assert actions[0] == sent(inst, 0)
    assert actions[1] == StateChanged("VI_1", State.MASTER, State.FAULT, "script chk failed")
    down = master()
    actions = down.set_fault("link", "interface eth0 down", 7.0)
    assert actions[0] == StateChanged("VI_1", State.MASTER, State.FAULT, "interface eth0 down")
    assert actions[-1] == RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.FAULT, 100)


def test_fault_cleared_returns_to_backup():
    inst = master()
    inst.set_fault("link", "interface eth0 down", 7.0)
    actions = inst.set_fault("link", None, 8.0)
    assert actions[0] == StateChanged("VI_1", State.FAULT, State.BACKUP, "fault cleared")
    assert inst.down_at == pytest.approx(8.0 + 3 + 156 / 256, abs=1e-9)


def test_effective_priority_clamps_and_master_advertises_the_change_at_once():
    inst = master()
    actions = inst.set_priority(3.0, delta=("chk", -150))
    assert actions == [
        PriorityChanged("VI_1", 100, 1),
        LogEvent("VI_1", "Changing effective priority from 100 to 1"),
        sent(inst, 1),
    ]
    inst.set_priority(3.0, delta=("chk", 200))
    assert inst.effective_priority == 254


def test_owner_priority_never_changes():
    inst = master(priority=255)
    assert inst.set_priority(1.0, delta=("chk", -50)) == []
    assert inst.effective_priority == 255


def test_backup_priority_change_recomputes_the_running_down_timer():
    inst = make_instance()
    inst.start(0.0)
    inst.set_priority(1.0, delta=("chk", 100))  # 200: MDI 3 + 56/256 from the last reset at 0
    assert inst.down_at == pytest.approx(3 + 56 / 256, abs=1e-9)


def test_transition_table_rejects_impossible_changes():
    inst = make_instance()
    with pytest.raises(TransitionError):
        inst._set_state(State.DELETED, "bug", 0.0)  # INIT -> DELETED
    inst._set_state(State.STOP, "stopped", 0.0)
    with pytest.raises(TransitionError):
        inst._set_state(State.MASTER, "bug", 0.0)  # nothing leaves STOP


def test_tracked_vip_deleted_from_outside_sends_master_to_backup():
    inst = master()
    actions = inst.on_vip_deleted(VIPS[0], 6.0)
    assert actions[0] == LogEvent("VI_1", "VIP 192.0.2.10 deleted - entering BACKUP")
    assert actions[1] == StateChanged("VI_1", State.MASTER, State.BACKUP, "VIP 192.0.2.10 deleted")
    assert inst.state == State.BACKUP
    assert inst.down_at is not None  # the election runs again


def test_no_track_vip_deleted_from_outside_is_ignored():
    from dataclasses import replace

    from core_builders import VIP

    inst = master(vips=(replace(VIP, track=False),))
    assert inst.on_vip_deleted(VIPS[0], 6.0) == []
    assert inst.state == State.MASTER
