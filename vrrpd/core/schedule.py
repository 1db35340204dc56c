"""The engine's timer wheel: every instance's next deadline in one heap, rescheduled lazily.

RFC 5798 6.4.2: a Backup restarts its Master_Down_Timer on every advert it accepts, so with 200
instances at 100 ms the earliest deadline moves 2000 times a second, always later. Pushing a new
heap entry each time would leave as many stale ones to pop again. Instead each instance keeps at
most one live entry, at or before its real deadline: a deadline that moves later leaves the entry
where it is, and when the entry surfaces it is re-pushed at the instance's deadline then. A
deadline that moves earlier is pushed at once, so nothing ever fires late.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

DeadlineOf = Callable[[str], float | None]  # an instance's next deadline; None: none (or gone)


class Deadlines:
    """Per-instance deadlines; `next` and `pop_due` ask `deadline_of(name)` for the truth."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._queued: dict[str, float] = {}  # name -> time of its live heap entry
        self._seq = 0

    def schedule(self, name: str, at: float | None) -> None:
        """Instance `name` now has its next deadline `at` (None: no timer running)."""
        if at is None:
            return  # a live entry, if any, finds nothing to do when it surfaces
        queued = self._queued.get(name)
        if queued is None or at < queued:
            self._push(name, at)

    def next(self, deadline_of: DeadlineOf) -> float | None:
        """The earliest real deadline; entries found early are moved to their real time."""
        heap = self._heap
        while heap:
            at, _, name = heap[0]
            if self._queued.get(name) != at:
                heapq.heappop(heap)  # superseded by an earlier entry for the same instance
                continue
            actual = deadline_of(name)
            if actual == at:
                return at
            heapq.heappop(heap)
            del self._queued[name]
            if actual is not None:
                self._push(name, actual)
        return None

    def pop_due(self, now: float, deadline_of: DeadlineOf) -> list[str]:
        """The instances with a deadline at or before `now`, in deadline order, each once;
        they are off the heap until scheduled again."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, name = heapq.heappop(heap)
            if self._queued.get(name) != at:
                continue
            del self._queued[name]
            actual = deadline_of(name)
            if actual is None:
                continue
            if actual <= now:
                due.append(name)
            else:
                self._push(name, actual)
        return due

    def clear(self) -> None:
        self._heap.clear()
        self._queued.clear()

    def _push(self, name: str, at: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, name))
        self._queued[name] = at
