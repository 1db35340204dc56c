"""Root-only integration fixtures: a fresh, uniquely named namespace lab per test.

Every lab is built from `netns-lab/vrrplab` and torn down in a `finally`, even when the test
fails; `vrrplab.netns.CLEANUP` also removes leftovers at interpreter exit or on SIGINT/SIGTERM.
Waits poll kernel state against a deadline (`wait_until`); no sleep stands in for a condition.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

LAB_DIR = Path(__file__).resolve().parents[2] / "netns-lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

from vrrplab import Lab, in_netns, netns_available, wait_until  # noqa: E402

T = TypeVar("T")
SKIP_REASON = netns_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.root)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=f"integration: {SKIP_REASON}"))


def pytest_report_header(config: pytest.Config) -> str | None:
    if SKIP_REASON:
        return f"integration tests skipped: {SKIP_REASON}"
    return None


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    """Two routers and a client on one bridge; `@pytest.mark.parametrize('lab', [3], indirect=True)`
    changes the router count."""
    routers = getattr(request, "param", 2)
    with Lab(routers=routers, tag="t", workdir=tmp_path) as built:
        yield built


def run_in(ns: str, make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh loop with this thread inside namespace `ns`."""

    async def main() -> T:
        return await make()

    with in_netns(ns):
        return asyncio.run(main())


async def poll(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """The asyncio twin of `wait_until`: poll without blocking the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


__all__ = ["poll", "run_in", "wait_until"]
