"""Network namespaces the lab creates, and the guarantee that they go away.

Lab rules (DESIGN.md "Network lab rules"): every namespace is ours, uniquely named
`vrl-<pid>-<random>-<tag>`, and removed on normal exit, on an exception, on SIGINT/SIGTERM and at
interpreter exit. Processes are stopped by the PID we started, never by name.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

PREFIX = "vrl-"
CLONE_NEWNET = 0x40000000


class LabError(RuntimeError):
    """A lab command failed or a condition was not met in time."""


def unique_prefix() -> str:
    """`vrl-<pid>-<6 hex>`: unique per lab, recognisable as ours by pid."""
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"


def run(args: list[str], check: bool = True, timeout: float = 20.0) -> str:
    """Run a command (no shell) and return stdout; raise `LabError` with stderr on failure."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} -> rc {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def ns_exec(ns: str, *args: str) -> list[str]:
    """The argv that runs `args` inside namespace `ns`."""
    return ["ip", "netns", "exec", ns, *args]


def sysctl(ns: str, key: str, value: str | int) -> None:
    run(ns_exec(ns, "sysctl", "-qw", f"{key}={value}"))


def netns_available() -> str | None:
    """None when we can create namespaces here, else the reason we cannot."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    try:
        run(["ip", "netns", "list"])
    except (OSError, LabError) as exc:
        return f"`ip netns` is unavailable: {exc}"
    return None


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the block with this *thread* inside `ns` (setns(2)); sockets opened stay there."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


class Cleanup:
    """Everything this process created: namespaces and child PIDs, undone in reverse order."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.pids: list[int] = []
        self._installed = False

    def install(self) -> None:
        """Hook atexit and SIGINT/SIGTERM once, so an interrupted lab still cleans up."""
        if self._installed:
            return
        self._installed = True
        atexit.register(self.run)
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            signal.signal(sig, self._handler(previous))

    def _handler(self, previous: object) -> Callable[[int, FrameType | None], None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.run()
            if callable(previous):
                previous(signum, frame)
            else:
                raise SystemExit(128 + signum)

        return handle

    def add_ns(self, ns: str) -> None:
        assert ns.startswith(PREFIX), ns
        self.namespaces.append(ns)

    def run(self) -> None:
        """Kill our children (by PID), then delete our namespaces. Idempotent."""
        for pid in reversed(self.pids):
            kill_pid(pid, signal.SIGKILL)
        self.pids.clear()
        for ns in reversed(self.namespaces):
            delete_ns(ns)
        self.namespaces.clear()


CLEANUP = Cleanup()


def spawn_in(ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in namespace `ns`, its output appended to `log`, in its own session, and
    registered for cleanup by PID."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ns_exec(ns, *argv), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    CLEANUP.pids.append(proc.pid)
    return proc


def kill_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def delete_ns(ns: str) -> None:
    """Delete one of our namespaces; any process still inside it was started by us."""
    if not ns.startswith(PREFIX):
        raise LabError(f"refusing to delete {ns}: not a lab namespace")
    out = run(["ip", "netns", "pids", ns], check=False)
    for word in out.split():
        if word.isdigit():
            kill_pid(int(word), signal.SIGKILL)
    run(["ip", "netns", "delete", ns], check=False)


def create_ns(ns: str) -> None:
    CLEANUP.install()
    CLEANUP.add_ns(ns)
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; `LabError` naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
