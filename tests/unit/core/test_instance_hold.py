"""An instance held out of service until a weight-0 script first reports (keepalived 2.2.7:
no `(init)` line and no notify while waiting; then `Entering BACKUP STATE` or FAULT)."""

from core_builders import make_instance

from vrrpd.core.actions import LogEvent, NotifyEvent, NotifyTarget, RunNotify, State, StateChanged

KEY, WHY = "script:chk", "tracked script chk has not returned yet"


def held(**kw: object):
    inst = make_instance(**kw)
    inst.hold(KEY, WHY)
    assert inst.start(0.0) == []
    assert inst.state == State.INIT and inst.next_deadline() is None
    return inst


def test_held_instance_says_nothing_until_its_script_succeeds_then_enters_backup() -> None:
    inst = held()
    assert inst.set_fault(KEY, WHY, 0.1) == []  # the trackers restating "not returned yet"
    actions = inst.set_fault(KEY, None, 0.5)
    assert actions == [
        StateChanged("VI_1", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_1", "Entering BACKUP STATE"),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.BACKUP, 100),
    ]
    assert inst.next_deadline() is not None  # the down timer runs from here


def test_a_first_failure_puts_the_held_instance_in_fault() -> None:
    inst = held()
    actions = inst.set_fault(KEY, "chk failed", 0.5)
    assert actions[0] == StateChanged("VI_1", State.INIT, State.FAULT, "chk failed")
    assert LogEvent("VI_1", "Entering FAULT STATE") in actions
    assert inst.state == State.FAULT
    assert inst.set_fault(KEY, None, 1.0)[0] == StateChanged(
        "VI_1", State.FAULT, State.BACKUP, "fault cleared"
    )


def test_two_pending_scripts_release_only_when_both_have_reported() -> None:
    inst = make_instance()
    inst.hold(KEY, WHY)
    inst.hold("script:other", "tracked script other has not returned yet")
    assert inst.start(0.0) == []
    assert inst.set_fault(KEY, None, 0.1) == []
    assert inst.state == State.INIT
    assert inst.set_fault("script:other", None, 0.2)[0].new == State.BACKUP


def test_another_fault_while_held_is_a_fault_at_once() -> None:
    inst = held()
    actions = inst.set_fault("link", "interface eth0 down", 0.3)
    assert inst.state == State.FAULT and actions[0].old == State.INIT


def test_held_owner_with_state_master_goes_master_once_released() -> None:
    inst = held(priority=255, initial_state="MASTER")
    actions = inst.set_fault(KEY, None, 0.5)
    assert inst.state == State.MASTER
    assert not any(isinstance(a, LogEvent) and "BACKUP" in a.message for a in actions)
