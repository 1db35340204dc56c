"""Tracker arithmetic (core/tracking.py) and tracker parsing (config/trackers.py), with literal
values. Expected behaviour is keepalived 2.2.7's, as observed running it in a namespace:
weights, reverse, rise/fall with init_fail, file values, quorum with delays, sync groups."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vrrpd.config.loader import check_config
from vrrpd.config.model import (
    Config,
    InstanceConfig,
    ScriptSpec,
    SyncGroupConfig,
    TrackFileSpec,
    TrackProcessSpec,
    TrackRef,
)
from vrrpd.config.source import MemorySource
from vrrpd.core.tracking import (
    FaultChange,
    Kind,
    PriorityDelta,
    ProcessCounter,
    ScriptCounter,
    Status,
    Tracking,
    Update,
    Watch,
    file_effect,
    plan_watches,
    weighted,
)

G, B, I = Status.GOOD, Status.BAD, Status.INIT  # noqa: E741


# -- the weight table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "weight", "reverse", "expected"),
    [
        (G, 10, False, (10, False)),
        (B, 10, False, (0, False)),
        (G, -10, False, (0, False)),
        (B, -10, False, (-10, False)),
        (G, 10, True, (-10, False)),
        (B, 10, True, (0, False)),
        (G, -10, True, (0, False)),
        (B, -10, True, (10, False)),
        (G, 0, False, (0, False)),
        (B, 0, False, (0, True)),
        (G, 0, True, (0, True)),
        (B, 0, True, (0, False)),
        (I, 0, False, (0, True)),  # weight 0 holds the instance until the first result
        (I, 0, True, (0, True)),
        (I, 10, False, (0, False)),  # INIT contributes nothing either way
        (I, -10, False, (0, False)),
        (I, -10, True, (0, False)),
        (G, 253, False, (253, False)),
        (B, -253, False, (-253, False)),
    ],
)
def test_weight_table(status, weight, reverse, expected):
    assert weighted(status, weight, reverse) == expected


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "expected"),
    [
        (2, 1, False, (2, False)),
        (5, 3, False, (15, False)),
        (-1, 5, False, (-5, False)),
        (9, 5, False, (45, False)),
        (0, 3, False, (0, False)),
        (4, 3, True, (-12, False)),
        (-4, 3, True, (12, False)),
        (-300, 1, False, (0, True)),  # below -253: FAULT
        (-253, 1, False, (-253, False)),
        (-254, 1, False, (0, True)),
        (127, 2, False, (253, False)),  # capped at 253
        (1, 254, False, (253, False)),
        (-1, 254, False, (0, True)),
        (0, 0, False, (0, False)),
        (3, 0, False, (0, True)),  # weight 0: non-zero is a fault
        (-3, 0, False, (0, True)),
        (0, 0, True, (0, True)),  # weight 0 reverse: zero is a fault (keepalived 2.2.7)
        (7, 0, True, (0, False)),
    ],
)
def test_file_effect(value, weight, reverse, expected):
    assert file_effect(value, weight, reverse) == expected


# -- rise / fall ----------------------------------------------------------------------------------


def run(counter: ScriptCounter, results: str) -> list[Status | None]:
    """Feed 'o' (success) / 'x' (failure) and collect the status changes."""
    return [counter.record(r == "o") for r in results]


def test_one_result_decides_init_either_way():
    assert run(ScriptCounter(rise=2, fall=2), "o") == [G]
    assert run(ScriptCounter(rise=2, fall=2), "x") == [B]
    assert run(ScriptCounter(rise=5, fall=5), "x") == [B]


def test_fall_consecutive_failures_take_it_down():
    c = ScriptCounter(rise=1, fall=3)
    assert run(c, "o") == [G]
    assert run(c, "xxoxxx") == [None, None, None, None, None, B]
    assert c.result == 0


def test_rise_consecutive_successes_bring_it_up():
    c = ScriptCounter(rise=3, fall=1)
    assert run(c, "x") == [B]
    assert run(c, "ooxooo") == [None, None, None, None, None, G]
    assert c.result == 3


def test_rise_2_fall_2_like_keepalived_chk_w():
    # keepalived 2.2.7: start 100, first failure "failed" -> 90, then two successes -> 100.
    c = ScriptCounter(rise=2, fall=2)
    assert run(c, "xxo") == [B, None, None]
    assert run(c, "o") == [G]
    assert run(c, "xoxx") == [None, None, None, B]


def test_init_fail_needs_rise_successes_but_stays_init_until_then():
    c = ScriptCounter(rise=2, fall=2, init_fail=True)
    assert c.result == 0 and c.status is I
    assert run(c, "o") == [None]
    assert c.status is I
    assert run(c, "o") == [G]
    c = ScriptCounter(rise=2, fall=2, init_fail=True)
    assert run(c, "x") == [B]  # keepalived logs "failed" for the first failure


def test_counter_stays_in_range():
    c = ScriptCounter(rise=3, fall=4)
    run(c, "o" * 20)
    assert c.result == 6
    run(c, "x" * 20)
    assert c.result == 0


# -- process quorum and delays --------------------------------------------------------------------


def test_quorum_and_quorum_max():
    q = ProcessCounter(quorum=2, quorum_max=3)
    q.start(0)
    assert q.status is B
    assert q.observe(1, 1.0) is None
    assert q.observe(2, 2.0) is G
    assert q.observe(3, 3.0) is None
    assert q.observe(4, 4.0) is B  # too many
    assert q.observe(3, 5.0) is G


def test_quorum_max_zero_means_none_may_run():
    q = ProcessCounter(quorum=0, quorum_max=0)
    q.start(0)
    assert q.status is G
    assert q.observe(1, 1.0) is B


def test_fork_delay_waits_before_up_and_a_bounce_cancels():
    q = ProcessCounter(quorum=1, fork_delay_s=0.5, terminate_delay_s=2.0)
    q.start(0)
    assert q.observe(1, 10.0) is None
    assert q.pending_at == 10.5
    assert q.tick(10.4) is None
    assert q.tick(10.5) is G
    assert q.pending_at is None
    assert q.observe(0, 11.0) is None
    assert q.pending_at == 13.0
    assert q.observe(1, 12.0) is None  # back before terminate_delay ran out: no change
    assert q.pending_at is None
    assert q.tick(13.0) is None
    assert q.status is G


def test_terminate_delay():
    q = ProcessCounter(quorum=1, terminate_delay_s=1.0)
    q.start(2)
    assert q.observe(0, 5.0) is None
    assert q.tick(5.99) is None
    assert q.tick(6.0) is B


# -- planning: weights, sync groups, owners -------------------------------------------------------

CHK = ScriptSpec("chk", ("/bin/true",), weight=-10)
CHK0 = ScriptSpec("chk0", ("/bin/true",))
CHKREV = ScriptSpec("chkrev", ("/bin/true",), weight=-10, reverse=True)
F1 = TrackFileSpec("f1", "/run/f1")
P1 = TrackProcessSpec("p1", "haproxy", weight=4)


def inst(name: str, priority: int = 100, **kw: object) -> InstanceConfig:
    return replace(InstanceConfig(name=name, vrid=51, priority=priority), **kw)  # type: ignore[arg-type]


def config(*instances: InstanceConfig, groups: tuple[SyncGroupConfig, ...] = ()) -> Config:
    return Config(
        instances=instances,
        sync_groups=groups,
        scripts=(CHK, CHK0, CHKREV),
        track_files=(F1,),
        track_processes=(P1,),
    )


def test_entry_weight_overrides_and_default_comes_from_the_tracker():
    vi = inst(
        "VI_1",
        track_scripts=(TrackRef("chk"), TrackRef("chkrev"), TrackRef("chk0", 5, True)),
        track_interfaces=(TrackRef("eth1", 0), TrackRef("eth2", -20)),
        track_files=(TrackRef("f1"), TrackRef("f1", 9)),
        track_processes=(TrackRef("p1"),),
    )
    watches, notes = plan_watches(config(vi))
    assert watches == [
        Watch("VI_1", Kind.SCRIPT, "chk", -10, False),
        Watch("VI_1", Kind.SCRIPT, "chkrev", -10, True),
        Watch("VI_1", Kind.SCRIPT, "chk0", 5, True),
        Watch("VI_1", Kind.INTERFACE, "eth1", 0, False),
        Watch("VI_1", Kind.INTERFACE, "eth2", -20, False),
        Watch("VI_1", Kind.FILE, "f1", 1, False),  # a duplicate entry keeps the first
        Watch("VI_1", Kind.PROCESS, "p1", 4, False),
    ]
    assert notes == []


def test_sync_group_members_drop_weighted_trackers_unless_tracking_weight():
    vi1 = inst("VI_1", track_scripts=(TrackRef("chk"), TrackRef("chk0")))
    vi2 = inst("VI_2", track_files=(TrackRef("f1", 0),))
    group = SyncGroupConfig("G1", ("VI_1", "VI_2"), track_interfaces=(TrackRef("eth9", -30),))
    watches, notes = plan_watches(config(vi1, vi2, groups=(group,)))
    assert watches == [
        Watch("VI_1", Kind.SCRIPT, "chk0", 0, False),
        Watch("VI_1", Kind.INTERFACE, "eth9", -30, False),  # group-level weights apply
        Watch("VI_2", Kind.FILE, "f1", 0, False),
        Watch("VI_2", Kind.INTERFACE, "eth9", -30, False),
    ]
    assert notes == ["(VI_1) ignoring tracked script chk with weights due to SYNC group"]
    weighted_group = replace(group, sync_group_tracking_weight=True)
    watches, notes = plan_watches(config(vi1, vi2, groups=(weighted_group,)))
    assert Watch("VI_1", Kind.SCRIPT, "chk", -10, False) in watches
    assert notes == []


def test_owner_drops_weighted_trackers_keeps_fault_switches():
    vi = inst("VI_3", 255, track_scripts=(TrackRef("chk"), TrackRef("chk0")))
    watches, notes = plan_watches(config(vi))
    assert watches == [Watch("VI_3", Kind.SCRIPT, "chk0", 0, False)]
    assert notes == ["(VI_3) ignoring tracked script chk with weights due to address_owner"]


# -- Tracking: updates in order -------------------------------------------------------------------


def tracking(*instances: InstanceConfig) -> Tracking:
    return Tracking(config(*instances))


def test_start_holds_weight0_script_instances_and_reports_unused_scripts():
    t = tracking(
        inst("VI_1", track_scripts=(TrackRef("chk"),)),
        inst("VI_2", track_scripts=(TrackRef("chk0"),)),
    )
    up = t.start({}, {}, {})
    assert up.changes == [
        FaultChange("VI_2", "script:chk0", "tracked script chk0 has not returned yet")
    ]
    assert up.logs == ["Warning - script chkrev is not used"]
    assert set(t.scripts) == {"chk", "chk0"}


def test_script_results_log_keepalived_lines_and_move_priority():
    t = tracking(inst("VI_1", track_scripts=(TrackRef("chk"),)))
    t.start({}, {}, {})
    up = t.script_result("chk", rc=1)
    assert up.logs == [
        "Script `chk` now returning 1",
        "VRRP_Script(chk) failed (exited with status 1)",
    ]
    assert up.changes == [PriorityDelta("VI_1", "script:chk", -10)]
    assert t.script_result("chk", rc=1) == Update()  # no news, no lines
    up = t.script_result("chk", rc=0)
    assert up.logs == ["Script `chk` now returning 0", "VRRP_Script(chk) succeeded"]
    assert up.changes == [PriorityDelta("VI_1", "script:chk", 0)]


@pytest.mark.parametrize(
    ("kw", "line"),
    [
        ({"signal": 9}, "VRRP_Script(chk) failed (due to signal 9)"),
        ({"timed_out": True}, "VRRP_Script(chk) timed_out"),
        (
            {"error": "check_script_secure could not find script '/x'"},
            "VRRP_Script(chk) failed (check_script_secure could not find script '/x')",
        ),
        ({"rc": 2}, "VRRP_Script(chk) failed (exited with status 2)"),
    ],
)
def test_failure_causes(kw, line):
    t = tracking(inst("VI_1", track_scripts=(TrackRef("chk"),)))
    t.start({}, {}, {})
    assert t.script_result("chk", **kw).logs[-1] == line


def test_weight0_script_fault_and_recovery_and_reverse():
    t = tracking(
        inst("VI_1", track_scripts=(TrackRef("chk0"),)),
        inst("VI_2", track_scripts=(TrackRef("chk0", 0, True),)),
    )
    t.start({}, {}, {})
    up = t.script_result("chk0", rc=1)
    assert up.changes == [
        FaultChange("VI_1", "script:chk0", "tracked script chk0 failed"),
        FaultChange("VI_2", "script:chk0", None),  # reverse: down is fine
    ]
    up = t.script_result("chk0", rc=0)
    assert up.changes == [
        FaultChange("VI_1", "script:chk0", None),
        FaultChange("VI_2", "script:chk0", "tracked script chk0 succeeded (reverse)"),
    ]


def test_interfaces_files_processes():
    t = tracking(
        inst(
            "VI_1",
            track_interfaces=(TrackRef("eth1", -20), TrackRef("eth2", 0)),
            track_files=(TrackRef("f1", 3),),
            track_processes=(TrackRef("p1"),),
        )
    )
    up = t.start({"eth1": True, "eth2": True}, {"f1": 2}, {"p1": 1})
    assert up.changes == [
        PriorityDelta("VI_1", "file:f1", 6),
        PriorityDelta("VI_1", "process:p1", 4),
    ]
    assert t.link("eth1", False).changes == [PriorityDelta("VI_1", "interface:eth1", -20)]
    assert t.link("eth1", False) == Update()
    assert t.link("eth9", False) == Update()  # not tracked
    up = t.link("eth2", False)
    assert up.changes == [FaultChange("VI_1", "interface:eth2", "interface eth2 down")]
    assert up.logs == []  # the engine's executor says why an instance enters FAULT
    assert t.file_value("f1", -1).changes == [PriorityDelta("VI_1", "file:f1", -3)]
    up = t.file_value("f1", -100)
    assert up.changes == [  # into FAULT first, so the intermediate priority is never sent
        FaultChange("VI_1", "file:f1", "tracked file f1 has value -100"),
        PriorityDelta("VI_1", "file:f1", 0),
    ]
    assert t.file_value("f1", -90).changes == [  # still FAULT: only the reason changes
        FaultChange("VI_1", "file:f1", "tracked file f1 has value -90"),
    ]
    assert t.file_value("f1", 2).changes == [  # priority first, then out of FAULT
        PriorityDelta("VI_1", "file:f1", 6),
        FaultChange("VI_1", "file:f1", None),
    ]
    assert t.process_count("p1", 0, 1.0).changes == [PriorityDelta("VI_1", "process:p1", 0)]
    assert t.next_deadline() is None


def test_process_delays_through_tick():
    p = replace(P1, fork_delay_s=0.5)
    t = Tracking(
        replace(config(inst("VI_1", track_processes=(TrackRef("p1"),))), track_processes=(p,))
    )
    t.start({}, {}, {"p1": 0})
    assert t.process_count("p1", 1, 20.0) == Update()
    assert t.next_deadline() == 20.5
    assert t.tick(20.49) == Update()
    assert t.tick(20.5).changes == [PriorityDelta("VI_1", "process:p1", 4)]


def test_snapshot():
    t = tracking(
        inst("VI_1", track_scripts=(TrackRef("chk"),), track_interfaces=(TrackRef("chk", -5),))
    )
    t.start({"chk": True}, {}, {})
    t.script_result("chk", rc=3)
    snap = t.snapshot()
    assert snap["chk"] == {
        "type": "script",
        "status": B,
        "weight": -10,
        "reverse": False,
        "rise": 1,
        "fall": 1,
        "interval_s": 1.0,
        "timeout_s": 1.0,
        "last_rc": 3,
        "instances": {"VI_1": {"weight": -10, "reverse": False, "delta": -10, "fault": False}},
    }
    assert snap["interface:chk"]["status"] == G  # same name, other kind
    assert snap["interface:chk"]["up"] is True


# -- parsing (config/trackers.py) -----------------------------------------------------------------

CONF = """
vrrp_script chk {
    script "/usr/bin/test -f '/tmp/a b'"
    interval 0.2
    timeout 0
    weight -253 reverse
    rise 3
    fall 2
    init_fail
    user nobody nogroup
}
track_file tf {
    file /run/vrrpd-tf
    weight -254 reverse
    init_file 5 overwrite
}
vrrp_track_file old_name {
    file /run/vrrpd-old
}
vrrp_track_process none_may_run {
    process sleep
    quorum_max 0
}
vrrp_track_process pq {
    process sleep
    quorum 2
    quorum_max 1
    delay 0.5
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100
    }
    track_script {
        chk weight 254
        chk weight 3
    }
    track_interface {
        eth1 weight -254 no_reverse
    }
    track_process {
        pq weight 254
    }
}
"""


def test_parse_trackers_like_keepalived():
    path = "/etc/keepalived/keepalived.conf"
    result = check_config(path, MemorySource({path: CONF}), "node1")
    assert result.config is not None, [str(p) for p in result.problems]
    s = result.config.scripts[0]
    assert (s.argv, s.interval_s, s.timeout_s) == (("/usr/bin/test", "-f", "/tmp/a b"), 0.2, 0.2)
    assert (s.weight, s.reverse, s.rise, s.fall, s.init_fail) == (-253, True, 3, 2, True)
    assert (s.user, s.group) == ("nobody", "nogroup")
    none_may_run, pq = result.config.track_processes
    assert (none_may_run.quorum, none_may_run.quorum_max) == (0, 0)
    assert (pq.quorum, pq.quorum_max, pq.fork_delay_s, pq.terminate_delay_s) == (2, None, 0.5, 0.5)
    tf, old = result.config.track_files
    assert (tf.path, tf.weight, tf.reverse, tf.init_file, tf.init_overwrite) == (
        "/run/vrrpd-tf", -254, True, 5, True,
    )  # fmt: skip
    assert (old.weight, old.reverse, old.init_file) == (1, False, None)
    vi = result.config.instances[0]
    assert vi.track_scripts == (TrackRef("chk", 253, False, vi.track_scripts[0].location),)
    assert [(t.name, t.weight) for t in vi.track_interfaces] == [("eth1", -253)]
    assert [(t.name, t.weight) for t in vi.track_processes] == [("pq", 254)]
    warnings = [p.message for p in result.warnings]
    assert "weight for chk cannot be +/-254. Setting to +/-253" in warnings
    assert "weight for eth1 cannot be +/-254. Setting to +/-253" in warnings
    assert "duplicate track_script chk - ignoring" in warnings
    assert "quorum_max is less than quorum - ignoring" in warnings
    assert "'vrrp_track_file' is deprecated" in warnings
    assert not result.errors
