"""`raise_if_cancelled`: a cancellation that Python 3.11's `asyncio.wait_for` swallowed (it may
return the result when the task is cancelled as the awaited thing completes) still ends a
checker or tracker loop, so a service's stop cannot wait for ever."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from vrrpd.check.net import raise_if_cancelled


def test_a_swallowed_cancellation_is_raised_at_the_next_check() -> None:
    async def loop(rounds: list[int]) -> None:
        while True:
            # what 3.11's wait_for can do: the cancellation is lost here
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
            rounds.append(1)
            raise_if_cancelled()

    async def main() -> list[int]:
        rounds: list[int] = []
        task = asyncio.create_task(loop(rounds))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        return rounds

    assert asyncio.run(main()) == [1]  # one round, then it stopped


def test_nothing_happens_without_a_cancellation() -> None:
    async def main() -> str:
        raise_if_cancelled()
        return "ran on"

    assert asyncio.run(main()) == "ran on"
