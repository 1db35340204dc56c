"""Helpers for tests that run inside the IPVS VM: namespaces, ipvsadm as an independent check.

The adapter under test talks generic netlink through pyroute2; `ipvsadm -Ln` (installed on the
host, visible in the guest) reads the same kernel table through its own code, so assertions on
its output do not trust our decoder.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from vrrplab.netns import CLEANUP, in_netns, kill_pid

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


class Listener:
    """A real server: busybox httpd on port 80 in namespace `ns`, serving `name` at `/`.

    Started and stopped by its PID (the failure a checker must notice is the port closing)."""

    def __init__(self, ns: str, name: str, root: Path, port: int = 80) -> None:
        self.ns, self.name, self.port = ns, name, port
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "index.html").write_text(f"{name}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["ip", "netns", "exec", self.ns, "busybox", "httpd", "-f", "-p", str(self.port)]
        self.proc = subprocess.Popen(
            [*argv, "-h", str(self.root)], stdin=subprocess.DEVNULL, start_new_session=True
        )
        CLEANUP.pids.append(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        kill_pid(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.pid in CLEANUP.pids:
            CLEANUP.pids.remove(self.proc.pid)
        self.proc = None


def vrrpd_argv(*extra: str) -> list[str]:
    """The real daemon in the foreground, logging to the console, as RouterProcess runs it."""
    return [sys.executable, "-m", "vrrpd", "-f", "{conf}", "-n", "-l", "-D",
            "-p", "{pid}", "-r", "{vrrp_pid}", *extra]  # fmt: skip


def services(ns: str) -> dict[str, list[str]]:
    """`ipvsadm -Ln` as {"TCP 192.0.2.100:80 rr": ["192.0.2.12:80 Masq 1", ...]} (no counters)."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in table(ns):
        if line.startswith("->"):
            current.append(" ".join(line.split()[1:4]))
        else:
            current = out.setdefault(line, [])
    return {k: sorted(v) for k, v in out.items()}
