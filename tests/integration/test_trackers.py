"""Trackers in the real daemon: vrrp_script, track_interface, track_file, vrrp_track_process.

One lab (r1, r2, client) and one vrrpd per router serve the whole module; each test drives its
own instance on r1 (VI_1..VI_8, each with its own VIP and its own tracker), so the tests do not
depend on each other's order. r2 runs VI_1 (priority 100, so r1's VI_1 at 150 - 60 loses) and
VI_5 (priority 50, the witness that r1 kept advertising while its check script hung).
Every wait polls the daemon's log or the kernel with a deadline.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab import Lab
from vrrplab.netns import CLEANUP, kill_pid, run
from vrrplab.procs import RouterProcess
from vrrplab.topo import Node

SEQUENCE = "01101110100"  # chk_seq exit codes, one per run, then 0 for ever (rise 2, fall 3)
# Fast checks get `timeout 2`: a loaded CI host must not turn a slow fork into a failure.
PRIO = re.compile(r"\((?P<inst>VI_\d+)\) Changing effective priority from (\d+) to (\d+)")
STATE = re.compile(r"\((?P<inst>VI_\d+)\) Entering (?P<state>[A-Z]+) STATE")
WAIT = 10.0


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def instance(name: str, vrid: int, prio: int, node: Node, track: str, *, adv: str = "0.1") -> str:
    return (
        f"vrrp_instance {name} {{\n    state BACKUP\n    interface {node.ifname}\n"
        f"    virtual_router_id {vrid}\n    priority {prio}\n    version 3\n"
        f"    advert_int {adv}\n    virtual_ipaddress {{\n        192.0.2.{vrid + 49}/24\n"
        f"    }}\n{track}}}\n"
    )


def r1_conf(d: Path, node: Node, comm: str) -> str:
    glob = f"global_defs {{\n    router_id {node.name}\n    script_user root\n}}\n"
    scripts = f"""
vrrp_script chk_w {{
    script "/usr/bin/test -f {d}/flag_w"
    interval 0.1
    timeout 2
    weight -60
    rise 2
    fall 2
}}
vrrp_script chk_0 {{
    script "/usr/bin/test -f {d}/flag_0"
    interval 0.1
    timeout 2
}}
vrrp_script chk_rev {{
    script "/usr/bin/test -f {d}/flag_rev"
    interval 0.1
    timeout 2
    weight 0 reverse
}}
vrrp_script chk_seq {{
    script "{d}/seq.sh"
    interval 0.05
    timeout 2
    weight -10
    rise 2
    fall 3
}}
vrrp_script chk_hang {{
    script "{d}/hang.sh"
    interval 0.5
    timeout 0.3
    weight -7
}}
vrrp_script chk_missing {{
    script "{d}/missing.sh"
    interval 0.1
    timeout 2
    weight -3
}}
track_file f1 {{
    file {d}/f1
    weight 5
    init_file 0
}}
vrrp_track_process tp {{
    process {comm}
    weight -15
}}
"""
    insts = [
        instance("VI_1", 51, 150, node, "    track_script {\n        chk_w\n    }\n"),
        instance("VI_2", 52, 100, node, "    track_script {\n        chk_0\n    }\n"),
        instance("VI_3", 53, 100, node, "    track_script {\n        chk_rev\n    }\n"),
        instance("VI_4", 54, 100, node, "    track_script {\n        chk_seq\n    }\n"),
        instance(
            "VI_5", 55, 100, node,
            "    track_script {\n        chk_hang\n        chk_missing\n    }\n", adv="0.2",
        ),
        instance(
            "VI_6", 56, 100, node,
            "    track_interface {\n        t1 weight -30\n        t2\n    }\n",
        ),
        instance("VI_7", 57, 100, node, "    track_file {\n        f1\n    }\n"),
        instance("VI_8", 58, 100, node, "    track_process {\n        tp\n    }\n"),
    ]  # fmt: skip
    return glob + scripts + "".join(insts)


def r2_conf(node: Node) -> str:
    glob = f"global_defs {{\n    router_id {node.name}\n    script_user root\n}}\n"
    return (
        glob + instance("VI_1", 51, 100, node, "") + instance("VI_5", 55, 50, node, "", adv="0.2")
    )


@dataclass
class Rig:
    lab: Lab
    r1: RouterProcess
    r2: RouterProcess
    dir: Path
    sleeper: Path
    tracked: subprocess.Popen[bytes] | None = None

    def log(self, since: int = 0) -> str:
        return self.r1.output(since)

    def priority(self, inst: str) -> int | None:
        found = [int(m[3]) for m in PRIO.finditer(self.log()) if m["inst"] == inst]
        return found[-1] if found else None

    def state(self, inst: str, proc: RouterProcess | None = None) -> str:
        out = (proc or self.r1).output()
        found = [m["state"] for m in STATE.finditer(out) if m["inst"] == inst]
        return found[-1] if found else ""

    def start_tracked(self) -> None:
        self.tracked = subprocess.Popen([str(self.sleeper), "600"])
        CLEANUP.pids.append(self.tracked.pid)

    def kill_tracked(self) -> None:
        assert self.tracked is not None
        kill_pid(self.tracked.pid, signal.SIGKILL)
        self.tracked.wait(5)
        CLEANUP.pids.remove(self.tracked.pid)
        self.tracked = None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    workdir = tmp_path_factory.mktemp("trackers")
    d = workdir / "t"
    d.mkdir()
    for flag in ("flag_w", "flag_0"):
        (d / flag).touch()
    script(d / "seq.sh", f'n=$(cat {d}/seq.n 2>/dev/null || echo 0)\necho $((n + 1)) > {d}/seq.n\n'
           f'rc=$(echo {SEQUENCE} | cut -c $((n + 1)))\nexit ${{rc:-0}}\n')  # fmt: skip
    script(d / "hang.sh", f"echo L $$ >> {d}/hang.pids\n[ -f {d}/hang_on ] || exit 0\n"
           f"sleep 30 &\necho C $! >> {d}/hang.pids\nwait\n")  # fmt: skip
    (d / "hang_on").touch()
    comm = "trk" + uuid.uuid4().hex[:10]  # unique /proc/PID/comm (15 characters at most)
    sleeper = d / comm
    shutil.copy("/bin/sleep", sleeper)
    with Lab(routers=2, tag="trk", workdir=workdir) as lab:
        n1, n2 = lab.routers
        for a, b in (("t1", "t1p"), ("t2", "t2p")):
            run(["ip", "-n", n1.ns, "link", "add", a, "type", "veth", "peer", "name", b])
            for ifname in (a, b):
                run(["ip", "-n", n1.ns, "link", "set", ifname, "up"])
        rig = Rig(lab, None, None, d, sleeper)  # type: ignore[arg-type]
        rig.start_tracked()
        rig.r1 = RouterProcess(n1, "vrrpd", r1_conf(d, n1, comm), workdir)
        rig.r2 = RouterProcess(n2, "vrrpd", r2_conf(n2), workdir)
        try:
            for p in (rig.r1, rig.r2):
                p.start()
            for p in (rig.r1, rig.r2):
                p.wait_started()
            yield rig
        finally:
            for p in (rig.r1, rig.r2):
                if p.running():
                    p.sigterm()
            if rig.tracked is not None:
                rig.kill_tracked()
    assert "Traceback" not in rig.log(), rig.log()[-3000:]


def test_script_weight_moves_the_vip_to_the_backup_and_back(rig):
    lab = rig.lab
    wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], WAIT, "r1 (150) to own VI_1's VIP")
    mark = rig.r1.mark()
    (rig.dir / "flag_w").unlink()
    wait_until(lambda: lab.owners("192.0.2.100") == ["r2"], WAIT, "r2 to take the VIP")
    log = rig.log(mark)
    assert "Script `chk_w` now returning 1" in log
    assert "VRRP_Script(chk_w) failed (exited with status 1)" in log
    assert "(VI_1) Changing effective priority from 150 to 90" in log
    (rig.dir / "flag_w").touch()
    wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], WAIT, "r1 to preempt back")
    assert "VRRP_Script(chk_w) succeeded" in rig.log(mark)
    assert rig.priority("VI_1") == 150
    wait_until(lambda: lab.client_reaches("192.0.2.100"), WAIT, "the client to reach the VIP")


def test_weight0_script_faults_the_instance_and_recovers(rig):
    wait_until(lambda: rig.state("VI_2") == "MASTER", WAIT, "VI_2 to become MASTER")
    (rig.dir / "flag_0").unlink()
    wait_until(lambda: rig.state("VI_2") == "FAULT", WAIT, "VI_2 to enter FAULT")
    wait_until(lambda: not rig.lab.owners("192.0.2.101"), WAIT, "VI_2's VIP to be removed")
    (rig.dir / "flag_0").touch()
    wait_until(lambda: rig.state("VI_2") == "MASTER", WAIT, "VI_2 to recover")
    assert rig.lab.owners("192.0.2.101") == ["r1"]


def test_weight0_reverse_faults_while_the_script_succeeds(rig):
    wait_until(lambda: rig.state("VI_3") == "MASTER", WAIT, "VI_3 to become MASTER")
    (rig.dir / "flag_rev").touch()
    wait_until(lambda: rig.state("VI_3") == "FAULT", WAIT, "VI_3 to enter FAULT")
    (rig.dir / "flag_rev").unlink()
    wait_until(lambda: rig.state("VI_3") == "MASTER", WAIT, "VI_3 to recover")


def test_rise_and_fall_count_consecutive_results(rig):
    """chk_seq exits 0 1 1 0 1 1 1 0 1 0 0 then 0: with rise 2 and fall 3 exactly one failure
    (after the three 1s in a row) and one recovery (after the two final 0s) may show."""
    wait_until(lambda: rig.priority("VI_4") == 100, WAIT, "chk_seq to recover")
    seq = rig.dir / "seq.n"
    wait_until(lambda: int(seq.read_text() or 0) > len(SEQUENCE) + 3, WAIT, "more runs")
    lines = [ln.split(": ", 1)[-1] for ln in rig.log().splitlines()
             if "chk_seq" in ln and "already running" not in ln]  # fmt: skip
    assert lines == [
        "VRRP_Script(chk_seq) succeeded",
        "Script `chk_seq` now returning 1",
        "Script `chk_seq` now returning 0",
        "Script `chk_seq` now returning 1",
        "VRRP_Script(chk_seq) failed (exited with status 1)",
        "Script `chk_seq` now returning 0",
        "Script `chk_seq` now returning 1",
        "Script `chk_seq` now returning 0",
        "VRRP_Script(chk_seq) succeeded",
    ]
    changes = [(m[2], m[3]) for m in PRIO.finditer(rig.log()) if m["inst"] == "VI_4"]
    assert changes == [("100", "90"), ("90", "100")]


def _gone(pid: int) -> bool:
    """Not running and reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return False


def _group_members(pgids: set[int]) -> list[int]:
    """Live members of these process groups (an orphan's zombie is init's to reap)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def test_hanging_script_is_killed_at_its_timeout_and_nothing_is_left(rig):
    wait_until(lambda: "VRRP_Script(chk_hang) timed_out" in rig.log(), WAIT, "the timeout")
    pids_file = rig.dir / "hang.pids"
    hung = lambda: pids_file.read_text().count("C ")  # noqa: E731
    wait_until(lambda: hung() >= 3, WAIT, "three hung runs")
    assert rig.state("VI_5") == "MASTER"
    assert rig.state("VI_5", rig.r2) == "BACKUP", "r1 stopped advertising while a script hung"
    (rig.dir / "hang_on").unlink()
    wait_until(lambda: "VRRP_Script(chk_hang) succeeded" in rig.log(), WAIT, "chk_hang to pass")
    words = pids_file.read_text().split()
    leaders = {int(p) for kind, p in zip(words[::2], words[1::2], strict=True) if kind == "L"}
    wait_until(lambda: all(_gone(p) for p in leaders), WAIT, "vrrpd to reap every run")
    assert _group_members(leaders) == []  # the hung children died with their group
    assert rig.state("VI_5", rig.r2) == "BACKUP"


def test_missing_script_fails_and_is_reported_once(rig):
    line = f"Cannot run script {rig.dir}/missing.sh"
    wait_until(lambda: "VRRP_Script(chk_missing) failed" in rig.log(), WAIT, "chk_missing")
    seq = rig.dir / "seq.n"  # chk_seq runs every 0.05 s: 10 more runs ~ 5 of chk_missing's
    runs = lambda: int(seq.read_text() or 0)  # noqa: E731 - empty while the script rewrites it
    start = runs()
    wait_until(lambda: runs() > start + 10, WAIT, "more script runs")
    assert rig.log().count(line) == 1
    assert rig.log().count("VRRP_Script(chk_missing) failed") == 1


def test_track_interface_weight_and_fault(rig):
    ns = rig.r1.node.ns
    wait_until(lambda: rig.state("VI_6") == "MASTER", WAIT, "VI_6 to become MASTER")
    run(["ip", "-n", ns, "link", "set", "t1", "down"])
    wait_until(lambda: rig.priority("VI_6") == 70, WAIT, "t1 down: 100 - 30")
    run(["ip", "-n", ns, "link", "set", "t2", "down"])
    wait_until(lambda: rig.state("VI_6") == "FAULT", WAIT, "t2 (weight 0) down: FAULT")
    run(["ip", "-n", ns, "link", "set", "t2", "up"])
    run(["ip", "-n", ns, "link", "set", "t1", "up"])
    wait_until(lambda: rig.priority("VI_6") == 100, WAIT, "t1 up again")
    wait_until(lambda: rig.state("VI_6") == "MASTER", WAIT, "VI_6 back to MASTER")


def test_track_file_value_times_weight(rig):
    f1 = rig.dir / "f1"
    assert f1.read_text().strip() == "0"  # init_file created it
    f1.write_text("4\n")
    wait_until(lambda: rig.priority("VI_7") == 120, WAIT, "4 x 5 added")
    tmp = rig.dir / "f1.new"
    tmp.write_text("-60\n")
    tmp.rename(f1)  # replaced by rename: -300 is below -253, FAULT
    wait_until(lambda: rig.state("VI_7") == "FAULT", WAIT, "VI_7 to enter FAULT")
    f1.write_text("0\n")
    wait_until(lambda: rig.priority("VI_7") == 100, WAIT, "back to 100")
    wait_until(lambda: rig.state("VI_7") == "MASTER", WAIT, "VI_7 back to MASTER")


def test_track_process_follows_a_process_by_name(rig):
    wait_until(lambda: rig.state("VI_8") == "MASTER", WAIT, "VI_8 to become MASTER")
    assert rig.priority("VI_8") is None  # running at start: weight -15 contributes nothing
    rig.kill_tracked()
    wait_until(lambda: rig.priority("VI_8") == 85, WAIT, "the process gone: 100 - 15")
    rig.start_tracked()
    wait_until(lambda: rig.priority("VI_8") == 100, WAIT, "the process back")
