"""core/schedule.py: instance deadlines rescheduled lazily, never late, each due once."""

from __future__ import annotations

from vrrpd.core.schedule import Deadlines


def test_a_deadline_moved_later_is_found_at_its_new_time_and_never_fires_early():
    real = {"A": 1.0, "B": 2.0}
    d = Deadlines()
    for name, at in real.items():
        d.schedule(name, at)
    real["A"] = 3.0  # A heard an advert: its down timer moved later
    d.schedule("A", 3.0)
    assert d.next(real.get) == 2.0
    assert d.pop_due(2.5, real.get) == ["B"]
    real["B"] = None  # type: ignore[assignment]
    assert d.next(real.get) == 3.0
    assert d.pop_due(3.0, real.get) == ["A"]


def test_a_deadline_moved_earlier_is_never_late():
    real = {"A": 5.0}
    d = Deadlines()
    d.schedule("A", 5.0)
    real["A"] = 1.5
    d.schedule("A", 1.5)
    assert d.next(real.get) == 1.5
    assert d.pop_due(1.5, real.get) == ["A"]
    real["A"] = 5.0  # rescheduled after firing; the old 5.0 entry is not a second one
    d.schedule("A", 5.0)
    assert d.pop_due(10.0, real.get) == ["A"]  # once, though two entries said 5.0
    assert d.next(real.get) is None  # off the heap until the engine schedules it again


def test_due_instances_come_in_deadline_order_once_each_and_gone_ones_are_dropped():
    real: dict[str, float | None] = {"C": 0.3, "A": 0.1, "B": 0.2, "G": 0.05}
    d = Deadlines()
    for name, at in real.items():
        d.schedule(name, at)
        d.schedule(name, at)  # scheduling the same deadline twice queues it once
    del real["G"]  # removed by a reload
    assert d.pop_due(0.25, real.get) == ["A", "B"]
    assert d.pop_due(0.25, real.get) == []
    d.clear()
    assert d.next(real.get) is None
