"""A pinger from the client namespace: `ping -D -i 0.01` to the VIP, counted afterwards."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vrrplab.netns import CLEANUP, kill_pid, ns_exec

REPLY = re.compile(r"^\[(?P<t>[0-9.]+)\] .* icmp_seq=(?P<seq>\d+)")
SUMMARY = re.compile(r"(?P<tx>\d+) packets transmitted, (?P<rx>\d+) received")


@dataclass(frozen=True)
class PingStats:
    """`sent`/`received` from ping's summary; `max_gap_s` is the longest silence between replies."""

    sent: int
    received: int
    max_gap_s: float
    gap_start: float
    gap_end: float

    @property
    def lost(self) -> int:
        return self.sent - self.received


class Pinger:
    def __init__(self, ns: str, target: str, out: Path, interval_s: float = 0.01) -> None:
        self.out = out
        argv = ["ping", "-D", "-n", "-i", f"{interval_s:g}", "-W", "1", target]
        self.argv = ns_exec(ns, *argv)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pinger:
        with self.out.open("wb") as f:
            self.proc = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT)
        CLEANUP.pids.append(self.proc.pid)
        return self

    def stop(self) -> PingStats:
        """SIGINT makes ping print its summary; then parse the whole output."""
        assert self.proc is not None
        kill_pid(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            kill_pid(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        CLEANUP.pids.remove(self.proc.pid)
        return parse(self.out.read_text(errors="replace"))


def parse(text: str) -> PingStats:
    times = [float(m["t"]) for line in text.splitlines() if (m := REPLY.match(line))]
    summary = SUMMARY.search(text)
    sent = int(summary["tx"]) if summary else len(times)
    received = int(summary["rx"]) if summary else len(times)
    gap, start, end = 0.0, 0.0, 0.0
    for a, b in itertools.pairwise(times):
        if b - a > gap:
            gap, start, end = b - a, a, b
    return PingStats(sent, received, gap, start, end)
