"""Helpers for tests that run inside the IPVS VM: namespaces, ipvsadm as an independent check.

The adapter under test talks generic netlink through pyroute2; `ipvsadm -Ln` (installed on the
host, visible in the guest) reads the same kernel table through its own code, so assertions on
its output do not trust our decoder.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vrrplab.netns import in_netns

T = TypeVar("T")


def run_ns(ns: str, make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh loop with this thread inside namespace `ns`."""

    async def main() -> T:
        return await make()

    with in_netns(ns):
        return asyncio.run(main())


def ipvsadm(ns: str, *args: str) -> str:
    """`ipvsadm ARGS` inside `ns`; raises with stderr on failure."""
    argv = ["ip", "netns", "exec", ns, "ipvsadm", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> rc {proc.returncode}: {proc.stderr}")
    return proc.stdout


def table(ns: str) -> list[str]:
    """`ipvsadm -Ln` without its two header lines, whitespace-normalised, one entry a line."""
    lines = ipvsadm(ns, "-Ln").splitlines()[3:]
    return [" ".join(line.split()) for line in lines if line.strip()]
