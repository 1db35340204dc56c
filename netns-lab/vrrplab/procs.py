"""Run one VRRP implementation per router namespace, and stop or break it on purpose.

Both implementations take keepalived's command line: `keepalived -f CONF -n -l -D -p PID -r PID2
--vrrp` (Debian 2.2.7) or `python -m vrrpd -f CONF -n -l -D -p PID -r PID2`; the argv is a
template so another daemon (or another build) can be dropped in. Each process gets its own pid
files and log file under the lab's work dir, and is stopped by PID only.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

from vrrplab import keepalived_trixie
from vrrplab.netns import CLEANUP, LabError, kill_pid, spawn_in, wait_until
from vrrplab.topo import Lab, Node

# -R: keepalived does not respawn its VRRP child, so `kill -9` means a dead router.
KEEPALIVED = "keepalived -f {conf} -n -l -D -R -p {pid} -r {vrrp_pid} --vrrp"
VRRPD = "-m vrrpd -f {conf} -n -l -D -p {pid} -r {vrrp_pid}"
IMPLS: dict[str, list[str]] = {
    "keepalived": KEEPALIVED.split(),
    "vrrpd": [sys.executable, *VRRPD.split()],
    # keepalived 2.3 from Debian 13 in a chroot (`make keepalived-trixie`): v3_checksum_as_v2.
    "keepalived-trixie": keepalived_trixie.argv(KEEPALIVED.split()),
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


@dataclass(frozen=True)
class VrrpOptions:
    """One `vrrp_instance` in more shapes than `InstanceSpec`: unicast, IPv6, auth, checksum.

    `unicast` sets `unicast_src_ip` to the node's own address of the VIPs' family and lists the
    peers' addresses in `unicast_peer`; `auth_pass` adds a VRRPv2 `authentication { auth_type PASS
    }` block; `checksum_as_v2` sets `v3_checksum_as_v2` in global_defs (RFC 9568 section 5.2.8:
    the VRRPv3 IPv4 checksum without the pseudo-header).
    """

    vips: tuple[str, ...] = ("192.0.2.100/24",)
    vrid: int = 51
    version: int = 3
    advert_int_s: float = 0.1
    state: str = "BACKUP"
    nopreempt: bool = False
    unicast: bool = False
    auth_pass: str | None = None
    checksum_as_v2: bool = False
    interface: str = "eth0"
    name: str = "VI_1"
    extra_global: tuple[str, ...] = ()
    extra_instance: tuple[str, ...] = ()

    @property
    def family(self) -> int:
        return ip_interface(self.vips[0]).version

    def master_down_s(self, priority: int) -> float:
        """RFC 5798 section 6.1 / RFC 3768 section 6.1: 3 x interval + skew."""
        adv = self.advert_int_s
        skew = (256 - priority) / 256 * (adv if self.version == 3 else 1.0)
        return 3 * adv + skew

    def skew_s(self, priority: int) -> float:
        return (256 - priority) / 256 * (self.advert_int_s if self.version == 3 else 1.0)


def vrrp_conf(
    node: Node, priority: int, opts: VrrpOptions | None = None, peers: Sequence[Node] = ()
) -> str:
    """keepalived.conf for one router from `VrrpOptions`; keepalived and vrrpd read it unchanged."""
    o = opts or VrrpOptions()

    def addr(n: Node) -> str:
        return str(n.addr6.ip if o.family == 6 else n.addr4.ip)

    glob = [f"router_id {node.name}", "script_user root", *o.extra_global]
    if o.checksum_as_v2:
        glob.append("v3_checksum_as_v2")
    inst = [
        f"state {o.state}", f"interface {o.interface}", f"virtual_router_id {o.vrid}",
        f"priority {priority}", f"version {o.version}", f"advert_int {o.advert_int_s:g}",
    ]  # fmt: skip
    if o.nopreempt:
        inst.append("nopreempt")
    if o.unicast:
        inst.append(f"unicast_src_ip {addr(node)}")
        inst.append("unicast_peer {\n" + "".join(f"        {addr(p)}\n" for p in peers) + "    }")
    if o.auth_pass is not None:
        inst.append(
            f"authentication {{\n        auth_type PASS\n        auth_pass {o.auth_pass}\n    }}"
        )
    inst += list(o.extra_instance)
    inst.append("virtual_ipaddress {\n" + "".join(f"        {v}\n" for v in o.vips) + "    }")
    body = "".join(f"    {line}\n" for line in glob)
    insts = "".join(f"    {line}\n" for line in inst)
    return f"global_defs {{\n{body}}}\n\nvrrp_instance {o.name} {{\n{insts}}}\n"


def launch_all(
    lab: Lab, routers: Sequence[tuple[Node, int, VrrpOptions | None]], impl: str = "vrrpd"
) -> list[RouterProcess]:
    """Start `impl` on each (node, priority, options) from `vrrp_conf`, the other routers as
    unicast peers; all are started before waiting for any, so their start-up overlaps."""
    procs = []
    for node, priority, opts in routers:
        peers = [r for r in lab.routers if r is not node]
        conf = vrrp_conf(node, priority, opts, peers)
        procs.append(RouterProcess(node, impl, conf, lab.workdir))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.wait_started()
    return procs


def launch(
    lab: Lab, node: Node, priority: int, opts: VrrpOptions | None = None, impl: str = "vrrpd"
) -> RouterProcess:
    """`launch_all` for one router."""
    return launch_all(lab, [(node, priority, opts)], impl)[0]


STATE_LINE = re.compile(r"\((?P<inst>[^)]+)\) Entering (?P<state>[A-Z]+) STATE")


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
        names = {
            "conf": self.conf,
            "pid": self.pid_file,
            "vrrp_pid": self.vrrp_pid_file,
            "workdir": workdir,
        }
        self.argv = [a.format(**names) for a in template]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for f in (self.pid_file, self.vrrp_pid_file):
            f.unlink(missing_ok=True)
        self.proc = spawn_in(self.node.ns, self.argv, self.log)

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

    def started_at(self) -> float:
        """Wall-clock time the daemon wrote its pid file: before it opens a socket or starts an
        instance, so a lower bound for anything it does on the wire (kernel timestamps)."""
        return self.pid_file.stat().st_mtime

    def output(self, since: int = 0) -> str:
        """The log (stdout and stderr); `since` is a `mark()` taken earlier."""
        if not self.log.exists():
            return ""
        return self.log.read_bytes()[since:].decode(errors="replace")

    def mark(self) -> int:
        """A position in the log, for `output(since=...)` and `states(since=...)`."""
        return self.log.stat().st_size if self.log.exists() else 0

    def states(self, since: int = 0) -> list[str]:
        """Every `(VI_x) Entering <STATE> STATE` the log shows, in order (both implementations)."""
        return [m["state"] for m in STATE_LINE.finditer(self.output(since))]

    def state(self) -> str:
        """The last state the log entered ("" before any)."""
        states = self.states()
        return states[-1] if states else ""

    @property
    def stats_file(self) -> Path:
        """Where vrrpd writes its SIGUSR2 stats: beside its `-p` pid file (`main.stats`)."""
        return self.pid_file.with_suffix(".stats")

    def dump_stats(self, timeout: float = 5) -> str:
        """SIGUSR2, then the stats file's text once the daemon has (re)written it."""
        self.stats_file.unlink(missing_ok=True)
        kill_pid(self.pid, signal.SIGUSR2)
        wait_until(self.stats_file.exists, timeout, f"{self.node.name} to write its stats file")
        return self.stats_file.read_text()
