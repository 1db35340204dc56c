"""BACKUP behaviour with literal times (RFC 5798 6.4.2; UNH-IOL 2.1-2.4, 3.3, 3.4)."""

import pytest
from core_builders import (
    HIGHER_IP,
    LOWER_IP,
    backup_init,
    make_instance,
    master_entry,
    v2_advert,
    v3_advert,
)

from vrrpd.core.actions import LogEvent, State, StateChanged

MDI_100 = 3 + 156 / 256  # v2, 1 s, priority 100


def test_every_instance_starts_in_backup_with_keepalived_log_and_notify():
    inst = make_instance()
    assert inst.start(0.0) == backup_init()
    assert inst.state == State.BACKUP
    assert inst.next_deadline() == pytest.approx(MDI_100, abs=1e-9)


def test_state_master_below_255_still_waits_the_down_interval():
    inst = make_instance(initial_state="MASTER", priority=200)
    assert inst.start(0.0) == backup_init(200)
    assert inst.next_deadline() == pytest.approx(3 + 56 / 256, abs=1e-9)


def test_address_owner_with_state_master_goes_straight_to_master_as_keepalived():
    inst = make_instance(priority=255, initial_state="MASTER")
    actions = inst.start(0.0)
    timeout = LogEvent("VI_1", "Receive advertisement timeout", detail=True)
    entry = master_entry(inst, "address owner")
    entry[1] = StateChanged("VI_1", State.INIT, State.MASTER, "address owner")
    assert actions == [timeout, *entry]
    assert inst.state == State.MASTER


def test_address_owner_with_state_backup_passes_through_backup_and_takes_over_at_once():
    inst = make_instance(priority=255, initial_state="BACKUP")
    actions = inst.start(0.0)
    assert actions == backup_init(255) + master_entry(inst, "address owner")
    assert inst.state == State.MASTER


def test_down_timer_expiry_makes_master_exactly_at_master_down_interval():
    inst = make_instance()
    inst.start(10.0)
    assert inst.on_timer(10.0 + MDI_100 - 1e-6) == []
    actions = inst.on_timer(10.0 + MDI_100)
    assert actions[0] == LogEvent("VI_1", "Receive advertisement timeout", detail=True)
    assert actions[1:] == master_entry(inst, "master down timer expired")
    assert inst.stats.become_master == 1


@pytest.mark.parametrize("priority", [100, 150])
def test_backup_accepts_equal_or_higher_priority_and_restarts_down_timer(priority):
    inst = make_instance()
    inst.start(0.0)
    assert inst.on_advert(v2_advert(priority), LOWER_IP, 2.0) == []
    assert inst.master_addr == LOWER_IP
    assert inst.down_at == pytest.approx(2.0 + MDI_100, abs=1e-9)


def test_backup_discards_lower_priority_with_preempt_so_the_timer_runs_out():
    inst = make_instance()
    inst.start(0.0)
    actions = inst.on_advert(v2_advert(90), HIGHER_IP, 1.0)
    msg = "received lower priority (90) advert from 192.0.2.200 - discarding"
    assert actions == [LogEvent("VI_1", msg)]
    assert inst.down_at == pytest.approx(MDI_100, abs=1e-9)


def test_nopreempt_backup_accepts_a_lower_priority_master():
    inst = make_instance(preempt=False)
    inst.start(0.0)
    assert inst.on_advert(v2_advert(90), HIGHER_IP, 1.0) == []
    assert inst.down_at == pytest.approx(1.0 + MDI_100, abs=1e-9)


def test_priority_zero_cuts_the_down_timer_to_skew_time():
    inst = make_instance()
    inst.start(0.0)
    assert inst.on_advert(v2_advert(0), HIGHER_IP, 1.0) == []
    assert inst.down_at == pytest.approx(1.0 + 156 / 256, abs=1e-9)
    assert inst.stats.pri_zero_rcvd == 1


def test_preempt_delay_window_accepts_lower_master_then_preempts():
    inst = make_instance(preempt_delay_s=5.0)
    inst.start(0.0)
    assert inst.on_advert(v2_advert(90), HIGHER_IP, 1.0) == []  # window opens until 6.0
    assert inst.on_advert(v2_advert(90), HIGHER_IP, 5.9) == []
    assert inst.down_at == pytest.approx(5.9 + MDI_100, abs=1e-9)
    assert inst.on_advert(v2_advert(90), HIGHER_IP, 6.0)[0].message.startswith(
        "received lower priority (90)"
    )


def test_v3_backup_adopts_the_masters_interval_and_recomputes_skew():
    inst = make_instance(version=3, advert_int_cs=100)
    inst.start(0.0)
    inst.on_advert(v3_advert(150, adver_int_cs=10), HIGHER_IP, 1.0)
    assert inst.master_adver_int_cs == 10
    assert inst.down_at == pytest.approx(1.0 + 0.3 + 156 * 10 / 25600, abs=1e-9)


def test_backups_ignore_adverts_in_fault():
    inst = make_instance()
    inst.set_fault("link", "interface eth0 down", 0.0)
    inst.start(0.0)
    assert inst.state == State.FAULT
    assert inst.on_advert(v2_advert(150), HIGHER_IP, 1.0) == []
    assert inst.stats.advert_rcvd == 0
