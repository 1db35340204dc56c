"""The timerfd timer fires its callback at the absolute monotonic deadline, and can be disarmed."""

import asyncio

from vrrpd.io.timerfd import TimerFd


def test_timerfd_fires_once_at_the_deadline_and_disarm_cancels():
    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        done = loop.create_future()

        def callback() -> None:
            fired.append(loop.time())
            if not done.done():
                done.set_result(None)

        timer = TimerFd(loop, callback)
        try:
            timer.arm(loop.time() + 0.05)
            timer.arm(None)  # disarmed: this deadline must never fire
            target = loop.time() + 0.02
            timer.arm(target)
            await asyncio.wait_for(done, 2.0)
            await asyncio.sleep(0.06)  # long enough for the disarmed deadline to have passed
            return fired[0] - target, len(fired)
        finally:
            timer.close()

    lateness, count = asyncio.run(scenario())
    assert lateness >= 0.0
    assert count == 1
