"""Run one VRRP implementation per router namespace, and stop or break it on purpose.

Both implementations take keepalived's command line: `keepalived -f CONF -n -l -D -p PID -r PID2
--vrrp` (Debian 2.2.7) or `python -m vrrpd -f CONF -n -l -D -p PID -r PID2`; the argv is a
template so another daemon (or another build) can be dropped in. Each process gets its own pid
files and log file under the lab's work dir, and is stopped by PID only.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vrrplab.netns import CLEANUP, LabError, kill_pid, ns_exec, wait_until
from vrrplab.topo import Node

# -R: keepalived does not respawn its VRRP child, so `kill -9` means a dead router.
KEEPALIVED = "keepalived -f {conf} -n -l -D -R -p {pid} -r {vrrp_pid} --vrrp"
VRRPD = "-m vrrpd -f {conf} -n -l -D -p {pid} -r {vrrp_pid}"
IMPLS: dict[str, list[str]] = {
    "keepalived": KEEPALIVED.split(),
    "vrrpd": [sys.executable, *VRRPD.split()],
}


@dataclass(frozen=True)
class InstanceSpec:
    """The one VRRP instance the lab configures (keepalived `vrrp_instance VI_1`)."""

    vip: str = "192.0.2.100/24"
    vrid: int = 51
    advert_int_s: float = 1.0
    version: int = 3
    interface: str = "eth0"

    def master_down_s(self, priority: int) -> float:
        """RFC 5798 section 6.1 / RFC 3768 section 6.1: 3 x interval + skew."""
        adv = self.advert_int_s
        skew = (256 - priority) / 256 * (adv if self.version == 3 else 1.0)
        return 3 * adv + skew


def keepalived_conf(node: Node, spec: InstanceSpec, priority: int) -> str:
    """A minimal keepalived.conf for one router; vrrpd reads the same file."""
    adv = f"{spec.advert_int_s:g}"
    return f"""global_defs {{
    router_id {node.name}
    vrrp_version {spec.version}
    script_user root
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface {spec.interface}
    virtual_router_id {spec.vrid}
    priority {priority}
    advert_int {adv}
    virtual_ipaddress {{
        {spec.vip}
    }}
}}
"""


class RouterProcess:
    """One implementation process in one router namespace."""

    def __init__(
        self, node: Node, impl: str, conf: str, workdir: Path, argv: list[str] | None = None
    ):
        if argv is None and impl not in IMPLS:
            raise LabError(f"unknown implementation {impl!r}; choose one of {sorted(IMPLS)}")
        self.node, self.impl = node, impl
        self.dir = workdir / node.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(conf)
        self.pid_file, self.vrrp_pid_file = self.dir / "main.pid", self.dir / "vrrp.pid"
        self.log = self.dir / "output.log"
        template = argv or IMPLS[impl]
        names = {"conf": self.conf, "pid": self.pid_file, "vrrp_pid": self.vrrp_pid_file}
        self.argv = [a.format(**names) for a in template]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for f in (self.pid_file, self.vrrp_pid_file):
            f.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ns_exec(self.node.ns, *self.argv), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        CLEANUP.pids.append(self.proc.pid)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError(f"{self.node.name}: not started")
        return self.proc.pid

    def vrrp_pid(self) -> int | None:
        """The VRRP child's PID from its pid file (keepalived forks one; vrrpd may not)."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.vrrp_pid_file.read_text().split()[0])
        return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> float:
        """SIGKILL the VRRP process (child first, then parent); returns the wall-clock time."""
        t = time.time()
        child = self.vrrp_pid()
        if child is not None and child != self.pid:
            kill_pid(child, signal.SIGKILL)
        kill_pid(self.pid, signal.SIGKILL)
        self.wait_exit(5)
        return t

    def sigterm(self, timeout: float = 10) -> float:
        """A clean stop (keepalived: priority-0 advert, VIPs removed)."""
        t = time.time()
        kill_pid(self.pid, signal.SIGTERM)
        self.wait_exit(timeout)
        return t

    def wait_exit(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_pid(self.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.proc.pid in CLEANUP.pids:
            CLEANUP.pids.remove(self.proc.pid)

    def restart(self) -> None:
        if self.running():
            self.sigterm()
        self.start()

    def wait_started(self, timeout: float = 10) -> None:
        """Wait for the pid file the daemon writes once it runs (or fail with its log)."""

        def ready() -> bool:
            if not self.running():
                raise LabError(f"{self.node.name}: {self.impl} exited:\n{self.output()[-2000:]}")
            return self.pid_file.exists()

        wait_until(ready, timeout, f"{self.node.name} {self.impl} to write {self.pid_file.name}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
