"""On a simulated LAN with loss, crashes, restarts and priority changes, VRRP converges.

Property (RFC 5798 section 6.4): once the network is healthy again and every node is up, within a
bounded number of advert intervals there is exactly one MASTER for the VRID and it stays so; with
preemption on, it holds the highest effective priority (equal priorities do not preempt, so only
the priority is asserted, not the address).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lan_sim import Lan

from vrrpd.core.timers import master_down_interval_s


@dataclass(frozen=True)
class Event:
    at_intervals: float
    kind: str
    node: int
    value: float


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[int], int, int, bool, list[Event], int]:
    n = draw(st.integers(min_value=2, max_value=5))
    version = draw(st.sampled_from([2, 3]))
    interval_cs = 100 if version == 2 else draw(st.sampled_from([1, 10, 100]))
    preempt = draw(st.booleans())
    priorities = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n))
    if draw(st.booleans()):
        priorities[0] = 255
    event = st.builds(
        Event,
        at_intervals=st.floats(0, 30, allow_nan=False),
        kind=st.sampled_from(["crash", "restart", "priority", "loss", "heal"]),
        node=st.integers(0, n - 1),
        value=st.floats(0.0, 1.0, allow_nan=False),
    )
    events = sorted(draw(st.lists(event, max_size=10)), key=lambda e: e.at_intervals)
    seed = draw(st.integers(0, 2**32 - 1))
    return priorities, version, interval_cs, preempt, events, seed


def _apply(lan: Lan, event: Event) -> None:
    node = lan.nodes[event.node]
    if event.kind == "crash":
        lan.crash(event.node)
    elif event.kind == "restart" and node.engine is None:
        lan.start(event.node)
    elif event.kind == "priority" and node.cfg.priority != 255:
        lan.set_priority(event.node, 1 + int(event.value * 253))
    elif event.kind == "loss":
        lan.loss = event.value * 0.9
    elif event.kind == "heal":
        lan.loss = 0.0


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_one_master_per_vrid_after_the_network_heals(scenario):
    priorities, version, interval_cs, preempt, events, seed = scenario
    interval_s = interval_cs / 100.0
    lan = Lan.build(priorities, version, interval_cs, preempt, seed)
    for event in events:
        lan.run_until(event.at_intervals * interval_s)
        _apply(lan, event)
    # The network heals: no loss, every crashed node restarts.
    lan.run_until(lan.now + interval_s)
    lan.loss = 0.0
    for i, node in enumerate(lan.nodes):
        if node.engine is None:
            lan.start(i)
    # Worst case: a node restarting waits one Master_Down_Interval, may preempt once more after
    # another, and the loser hears the winner one wire delay later.
    settle = 2 * master_down_interval_s(version, 1, interval_cs) + 2 * interval_s
    lan.run_until(lan.now + settle)

    def exactly_one_master(lan: Lan) -> None:
        masters = lan.masters()
        assert len(masters) == 1, f"{len(masters)} masters at t={lan.now:.6f}"
        if preempt:
            best = max(n.priority for n in lan.live())
            assert masters[0].priority == best

    exactly_one_master(lan)
    lan.run_until(lan.now + 10 * interval_s, check=exactly_one_master)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    priorities=st.lists(st.integers(1, 254), min_size=2, max_size=5, unique=True),
    interval_cs=st.sampled_from([1, 10, 100]),
)
def test_backup_takes_over_within_master_down_interval_of_the_last_advert(priorities, interval_cs):
    """Kill the master: the highest remaining priority takes over exactly at its
    Master_Down_Interval after the last advert it heard (no other backup gets there first)."""
    lan = Lan.build(priorities, 3, interval_cs, True, seed=1)
    interval_s = interval_cs / 100.0
    lan.run_until(3 * master_down_interval_s(3, 1, interval_cs) + interval_s)
    [master] = lan.masters()
    lan.crash(lan.nodes.index(master))
    crash_at = lan.now
    lan.run_until(crash_at + 1e-4)  # adverts already on the wire still arrive
    survivors = [n for n in lan.nodes if n.engine is not None]
    heir = max(survivors, key=lambda n: n.priority)
    heir_inst = heir.engine.instances["VI_1"]  # type: ignore[union-attr]
    expected_at = heir_inst.down_at
    lan.run_until(crash_at + master_down_interval_s(3, 1, interval_cs) + interval_s)
    assert lan.masters() == [heir]
    assert heir_inst.last_transition_at == expected_at
