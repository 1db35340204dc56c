"""`vrrpctl` against real vrrpd daemons in the lab, and with a keepalived peer (docs/control.md).

r1 (priority 150) and r2 (priority 100; vrrpd, or keepalived 2.2.7 in the interop case) run one
instance at 100 ms adverts. vrrpctl runs from
the test's own namespace: the control socket is a file beside each daemon's `-p` pid file, and
filesystem sockets are reachable from any network namespace. What the daemons do is read from
the kernel (who holds the VIP) and from the wire (a Capture in the client namespace).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab.capture import Capture
from vrrplab.procs import InstanceSpec, RouterProcess, keepalived_conf

SPEC = InstanceSpec(advert_int_s=0.1)
VIP = SPEC.vip.split("/")[0]
SCRIPT = 'vrrp_script chk_true {\n    script "/bin/true"\n    interval 1\n}\n\n'


def vrrpctl(proc: RouterProcess, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vrrpd.ctl", "-p", str(proc.pid_file), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def status(proc: RouterProcess) -> dict:
    out = vrrpctl(proc, "status", "--json")
    assert out.returncode == 0, out.stderr
    (inst,) = json.loads(out.stdout)["instances"]
    return inst


def with_script(conf: str) -> str:
    """The lab's keepalived.conf with a `vrrp_script` tracked by VI_1."""
    conf = conf.replace("vrrp_instance", SCRIPT + "vrrp_instance", 1)
    return conf.replace("    virtual_ipaddress", "    track_script {\n        chk_true\n    }\n"
                        "    virtual_ipaddress", 1)  # fmt: skip


def start_pair(lab) -> list[RouterProcess]:
    r1, r2 = lab.routers
    procs = [
        RouterProcess(r1, "vrrpd", with_script(keepalived_conf(r1, SPEC, 150)), lab.workdir),
        RouterProcess(r2, "vrrpd", keepalived_conf(r2, SPEC, 100), lab.workdir),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.wait_started()
    wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 (150) to hold the VIP")
    wait_until(lambda: status(procs[1])["state"] == "BACKUP", 10, "r2 to settle in BACKUP")
    return procs


def stop(procs: list[RouterProcess]) -> None:
    for p in procs:
        if p.running():
            p.sigterm()


def adverts(cap: Capture, node, since: float = 0.0) -> list:
    return [
        e for e in cap.events() if e.kind == "advert" and e.src_mac == node.mac and e.t >= since
    ]


def test_status_matches_the_kernel_and_sockets_sit_beside_each_pid_file(lab):
    procs = start_pair(lab)
    r1, r2 = lab.routers
    try:
        one, two = status(procs[0]), status(procs[1])
        assert (one["state"], two["state"]) == ("MASTER", "BACKUP")
        assert one["vips"] == two["vips"] == [SPEC.vip]
        assert two["master_address"] == str(r1.addr4.ip)
        assert (one["vrid"], one["interface"], one["advert_int_s"]) == (51, "eth0", 0.1)
        assert one["effective_priority"] == one["base_priority"] == 150
        assert one["counters"]["advert_sent"] > 0 and two["counters"]["advert_rcvd"] > 0
        assert one["last_transition"]["reason"]
        # live tracker data when the daemon runs its trackers, else the configured reference
        trackers = one["trackers"]
        names = set(trackers) if isinstance(trackers, dict) else {t["name"] for t in trackers}
        assert names == {"chk_true"} and two["trackers"] in ([], {})
        if isinstance(trackers, dict):
            wait_until(lambda: status(procs[0])["trackers"]["chk_true"]["status"] == "GOOD",
                       10, "chk_true to be GOOD")  # fmt: skip

        table = vrrpctl(procs[0], "status")
        assert table.returncode == 0, table.stderr
        assert table.stdout.split("\n")[1].split()[:3] == ["VI_1", "MASTER", "150"]

        # side by side: each daemon's socket beside its own pid file, root-only, its own pid
        for p in procs:
            sock = p.pid_file.with_suffix(".ctl")
            assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
            out = json.loads(vrrpctl(p, "status", "--json").stdout)
            assert out["pid"] == p.pid

        # a third daemon told to use r1's socket refuses to start; r1 keeps it
        third = RouterProcess(r2, "vrrpd", keepalived_conf(r2, SPEC, 90), lab.workdir / "x")
        third.argv += ["--control-socket", str(procs[0].pid_file.with_suffix(".ctl"))]
        third.start()
        third.wait_exit(10)
        assert third.proc is not None and third.proc.returncode == 1
        assert "another vrrpd answers on control socket" in third.output()
        assert status(procs[0])["state"] == "MASTER"

        bad = vrrpctl(procs[0], "takeover", "NOPE")
        assert bad.returncode == 1 and "no instance 'NOPE'" in bad.stderr
        assert "Traceback" not in bad.stderr
        usage = vrrpctl(procs[0], "priority", "VI_1", "300")
        assert usage.returncode == 2 and "1..254" in usage.stderr
    finally:
        stop(procs)
    gone = vrrpctl(procs[0], "status")
    assert gone.returncode == 3 and "cannot connect" in gone.stderr
    assert not procs[0].pid_file.with_suffix(".ctl").exists()


def test_reload_is_requested_or_refused_but_never_kills_the_daemon(lab):
    procs = start_pair(lab)
    try:
        out = vrrpctl(procs[0], "reload")
        if out.returncode == 0:
            assert out.stdout.strip() == "reload requested"
        else:  # SIGHUP not handled yet: refusing is right, dying of SIGHUP is not
            assert out.returncode == 1 and "SIGHUP" in out.stderr
        wait_until(lambda: status(procs[0])["state"] == "MASTER", 10, "r1 to stay MASTER")
        assert procs[0].running()
        assert "requested by uid 0 pid" in procs[0].output()
    finally:
        stop(procs)


def _silent(path: Path, held: list[socket.socket]) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    held.append(s)


def _answer_to(path: Path, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))  # blocking: waits for room in the backlog (40 silent clients)
        s.settimeout(10)
        # it may stop reading our flood and answer: read the answer below
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(payload)
        try:
            return s.recv(65536)
        except ConnectionResetError:
            return b""


def test_silent_garbage_and_huge_clients_do_not_stall_the_daemon(lab):
    procs = start_pair(lab)
    r1, _ = lab.routers
    path = procs[0].pid_file.with_suffix(".ctl")
    held: list[socket.socket] = []
    answers: dict[str, bytes] = {}
    try:
        with Capture(lab.client.ns) as cap:
            t0 = time.time()
            for _ in range(40):  # more than the daemon serves at once
                _silent(path, held)
            bad = {"garbage": b"\x00\xffnot json at all\n", "huge": b"{" + b"x" * (4 << 20)}

            def ask(kind: str) -> None:
                answers[kind] = _answer_to(path, bad[kind])

            workers = [threading.Thread(target=ask, args=(kind,)) for kind in bad]
            for w in workers:
                w.start()
            for w in workers:
                w.join(20)
            # the daemon still answers a real client while the silent ones are connected
            assert status(procs[0])["state"] == "MASTER"
            time.sleep(2.0)  # a window of wire time to count adverts in, not a wait for a state
            seen = [e.t for e in adverts(cap, r1, since=t0)]
        # 100 ms adverts for over 2 s: a stalled consumer would leave a hole or stop them
        assert len(seen) >= 10, f"only {len(seen)} adverts from r1 in {time.time() - t0:.1f} s"
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert max(gaps) < 0.3 * 3, f"advert gap {max(gaps):.3f} s"  # under Master_Down_Interval
        assert lab.owners(VIP) == ["r1"] and status(procs[1])["state"] == "BACKUP"
        assert b'"code":"bad_json"' in answers["garbage"]
        assert answers["huge"] == b"" or b'"code":"too_long"' in answers["huge"]
        # silent ones made room for later clients, oldest first; the rest time out
        held[0].settimeout(15)
        assert b'"code":"evicted"' in held[0].recv(4096)
        held[-1].settimeout(15)
        assert b'"code":"timeout"' in held[-1].recv(4096)
        assert held[-1].recv(4096) == b"", "the daemon closes the silent client"
        assert procs[0].running() and "Traceback" not in procs[0].output()
    finally:
        for s in held:
            s.close()
        stop(procs)


def test_priority_override_shows_in_the_adverts_and_clears(lab):
    procs = start_pair(lab)
    r1, _ = lab.routers
    try:
        with Capture(lab.client.ns) as cap:
            out = vrrpctl(procs[0], "priority", "VI_1", "170")
            assert out.returncode == 0, out.stderr
            wait_until(lambda: any(e.priority == 170 for e in adverts(cap, r1)), 5, "prio 170")
            inst = status(procs[0])
            assert (inst["base_priority"], inst["effective_priority"]) == (170, 170)
            assert "control: priority VI_1 170 requested by uid 0" in procs[0].output()
            t_clear = time.time()
            assert vrrpctl(procs[0], "priority", "VI_1", "clear").returncode == 0
            wait_until(lambda: any(e.priority == 150 for e in adverts(cap, r1, t_clear)), 5, "150")
        assert status(procs[0])["base_priority"] == 150
    finally:
        stop(procs)


def test_resign_hands_the_vip_over_and_holds_off_then_takeover_takes_it(lab):
    procs = start_pair(lab)
    try:
        out = vrrpctl(procs[0], "resign", "VI_1", "--for", "3")
        assert out.returncode == 0, out.stderr
        wait_until(lambda: lab.owners(VIP) == ["r2"], 5, "r2 to take the VIP from r1")
        # r1 (150, preempting) must not take it back while it holds off
        hold_end = time.time() + 2.0
        while time.time() < hold_end:
            assert lab.owners(VIP) == ["r2"], "r1 took the VIP back during its hold"
            time.sleep(0.05)
        assert status(procs[0])["state"] == "BACKUP"
        # ... and preempts back once the hold is over
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 to preempt back after the hold")

        out = vrrpctl(procs[1], "takeover", "VI_1")
        assert out.returncode == 0, out.stderr
        wait_until(lambda: lab.owners(VIP) == ["r2"], 5, "r2 to take the VIP on takeover")
        assert status(procs[1])["state"] == "MASTER"
        log = procs[1].output()
        assert "control: takeover VI_1 requested by uid 0" in log
    finally:
        stop(procs)


def test_the_socket_file_of_a_killed_daemon_is_reused(lab):
    r1 = lab.routers[0]
    proc = RouterProcess(r1, "vrrpd", keepalived_conf(r1, SPEC, 150), lab.workdir)
    proc.start()
    proc.wait_started()
    try:
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 to hold the VIP")
        proc.kill9()  # leaves main.ctl behind, with nobody listening
        assert os.path.exists(proc.pid_file.with_suffix(".ctl"))
        proc.start()
        proc.wait_started()
        wait_until(lambda: vrrpctl(proc, "status").returncode == 0, 10, "the new daemon's socket")
        assert status(proc)["vips"] == [SPEC.vip]
    finally:
        stop([proc])


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived missing")
def test_manual_failover_both_ways_with_a_keepalived_peer(lab):
    r1, r2 = lab.routers
    ours = RouterProcess(r1, "vrrpd", keepalived_conf(r1, SPEC, 150), lab.workdir)
    peer = RouterProcess(r2, "keepalived", keepalived_conf(r2, SPEC, 100), lab.workdir)
    procs = [ours, peer]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.wait_started()
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "vrrpd (150) to hold the VIP")
        out = vrrpctl(ours, "resign", "VI_1")  # no hold: until takeover or clear
        assert out.returncode == 0, out.stderr
        wait_until(lambda: lab.owners(VIP) == ["r2"], 5, "keepalived to take the VIP")
        assert status(ours)["state"] == "BACKUP"
        assert vrrpctl(ours, "takeover", "VI_1").returncode == 0
        wait_until(lambda: lab.owners(VIP) == ["r1"], 5, "vrrpd to take the VIP back")
        wait_until(lambda: "Entering BACKUP STATE" in peer.output().split("Entering MASTER")[-1],
                   5, "keepalived to step back to BACKUP")  # fmt: skip
        assert "Traceback" not in ours.output()
    finally:
        stop(procs)
