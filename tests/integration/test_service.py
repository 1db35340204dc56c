"""Running vrrpd as a service: systemd's notify handshake, daemonising without -n, one daemon per
pid file, and the signal dumps next to keepalived's own for the same configuration.

Everything runs the real daemon in lab namespaces; processes are stopped by the PIDs we know.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab.netns import CLEANUP, kill_pid, ns_exec
from vrrplab.procs import RouterProcess

from vrrpd.runtime.daemon import running_pid

VIP = "192.0.2.100"


def conf(name: str, priority: int) -> str:
    return f"""global_defs {{
    router_id {name}
    script_user root
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    version 3
    advert_int 0.1
    virtual_ipaddress {{
        {VIP}/24
        192.0.2.101/24 dev eth0 label eth0:web
    }}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 52
    priority {priority}
    nopreempt
    virtual_ipaddress {{
        198.51.100.10/24
    }}
}}
"""


def vrrpd_argv(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vrrpd", "-f", str(workdir / "r.conf"),
            "-p", str(workdir / "main.pid"), "-r", str(workdir / "vrrp.pid"), *extra]  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) counts as gone
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def test_notify_socket_gets_ready_after_startup_and_stopping_at_stop(lab, tmp_path, monkeypatch):
    r1 = lab.routers[0]
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(15)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        proc = RouterProcess(r1, "vrrpd", conf("r1", 150), tmp_path)
        proc.start()
        monkeypatch.delenv("NOTIFY_SOCKET")
        try:
            assert sock.recv(256) == b"READY=1"
            # READY comes once the instances have started and the services listen.
            out = proc.output()
            assert "(VI_1) Entering BACKUP STATE" in out
            assert proc.pid_file.exists()
            # SIGHUP: RELOADING=1 with MONOTONIC_USEC (Type=notify-reload), then READY=1 again
            kill_pid(proc.pid, signal.SIGHUP)
            reloading = sock.recv(256).decode().split("\n")
            now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
            assert 0 <= now_us - int(reloading[1].split("=")[1]) < 15_000_000
            assert sock.recv(256) == b"READY=1"
            wait_until(lambda: "Reload complete" in proc.output(), 5, "the reload's log line")
            kill_pid(proc.pid, signal.SIGTERM)
            assert sock.recv(256) == b"STOPPING=1"
            proc.wait_exit(10)
            assert proc.proc is not None and proc.proc.returncode == 0
        finally:
            if proc.running():
                proc.sigterm()


def test_daemonises_without_n_and_refuses_a_second_copy(lab, tmp_path):
    r1 = lab.routers[0]
    (tmp_path / "r.conf").write_text(conf("r1", 150))
    pid_file = tmp_path / "main.pid"
    log = tmp_path / "daemon.log"
    argv = vrrpd_argv(tmp_path, "-g", str(log), "-G")
    first = subprocess.run(
        ns_exec(r1.ns, *argv), capture_output=True, text=True, timeout=30, check=False
    )
    assert first.returncode == 0, first.stderr
    pid = wait_until(lambda: read_pid(pid_file), 10, "the daemon to write its pid file")
    CLEANUP.pids.append(pid)
    try:
        assert alive(pid)
        status = dict(
            line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        assert int(status["PPid"]) != os.getpid()  # double fork: re-parented, not our child
        assert os.getsid(pid) != pid  # not a session leader: can never get a terminal
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        wait_until(lambda: lab.owners(VIP) == ["r1"], 15, "the daemonised vrrpd to take the VIP")

        for extra in ((), ("-n",)):  # a second copy, forking or not
            second = subprocess.run(
                ns_exec(r1.ns, *vrrpd_argv(tmp_path, "-G", *extra)),
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert second.returncode != 0
            # The pid-file check, or the control socket's if that refuses first (runtime.control).
            refused = (f"daemon is already running (pid {pid}", "another vrrpd answers")
            assert any(text in second.stderr for text in refused), second.stderr
            assert "Traceback" not in second.stderr
        assert running_pid([str(pid_file)]) == pid
        assert alive(pid) and read_pid(pid_file) == pid
        assert lab.owners(VIP) == ["r1"]

        kill_pid(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 10, "the daemon to stop")
        wait_until(lambda: lab.owners(VIP) == [], 5, "the VIP to be released")
        assert not pid_file.exists()
        assert "Traceback" not in log.read_text()
    finally:
        kill_pid(pid, signal.SIGKILL)
        CLEANUP.pids.remove(pid)


@pytest.mark.parametrize("owner", ["dead", "not-vrrpd"])
def test_a_stale_pid_file_is_taken_over(lab, tmp_path, owner):
    """A pid file naming no process, or a live process that is no vrrpd (a reused PID)."""
    r1 = lab.routers[0]
    other = subprocess.Popen(["sleep", "60"] if owner == "not-vrrpd" else ["true"])
    if owner == "dead":
        other.wait()
    (tmp_path / "r.conf").write_text(conf("r1", 150))
    pid_file = tmp_path / "main.pid"
    pid_file.write_text(f"{other.pid}\n")
    log = (tmp_path / "out.log").open("wb")
    daemon = subprocess.Popen(
        ns_exec(r1.ns, *vrrpd_argv(tmp_path, "-n", "-l")), stdout=log, stderr=subprocess.STDOUT
    )
    CLEANUP.pids.append(daemon.pid)
    try:
        wait_until(lambda: read_pid(pid_file) == daemon.pid, 10, "vrrpd to take the pid file over")
        wait_until(lambda: lab.owners(VIP) == ["r1"], 15, "vrrpd to take the VIP")
        kill_pid(daemon.pid, signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        kill_pid(daemon.pid, signal.SIGKILL)
        daemon.wait(5)
        CLEANUP.pids.remove(daemon.pid)
        kill_pid(other.pid, signal.SIGKILL)
        other.wait(5)
        log.close()


def parse_data(text: str) -> dict[str, dict[str, str | list[str]]]:
    """keepalived.data as mehdy/keepalived-exporter reads it: ` VRRP Instance = X` opens a block,
    `   KEY = VALUE` lines fill it, `     ...` lines under `   Virtual IP (n):` are the VIPs."""
    out: dict[str, dict[str, str | list[str]]] = {}
    block: dict[str, str | list[str]] | None = None
    key = ""
    for line in text.splitlines():
        if line.startswith(" VRRP Instance = "):
            block = out.setdefault(line.split("=", 1)[1].strip(), {"vips": []})
        elif block is not None and line.startswith("     "):
            if key.startswith("Virtual IP ("):
                vips = block["vips"]
                assert isinstance(vips, list)
                vips.append(line.strip().removesuffix(" set"))
        elif block is not None and line.startswith("   "):
            sep = "=" if "=" in line else ":"
            key, _, value = (part.strip() for part in line.partition(sep))
            block.setdefault(key, value)
        elif not line.startswith("  "):
            block = None
    return out


def dump_both(lab, dump: str) -> tuple[str, str]:
    """Start vrrpd (r1, 150) and keepalived (r2, 100) on one config; return both dumps."""
    r1, r2 = lab.routers
    ours = RouterProcess(r1, "vrrpd", conf("r1", 150), lab.workdir)
    theirs = RouterProcess(r2, "keepalived", conf("r2", 100), lab.workdir)
    sig = signal.SIGUSR1 if dump == "data" else signal.SIGRTMIN + 2
    try:
        for p in (ours, theirs):  # vrrpd first: VI_2 is nopreempt, the first master keeps it
            p.start()
            p.wait_started()
        for vip in (VIP, "198.51.100.10"):
            wait_until(lambda v=vip: lab.owners(v) == ["r1"], 15, f"vrrpd on r1 to hold {vip}")
        wait_until(lambda: last_states(theirs) == {"BACKUP"}, 10, "keepalived to be BACKUP")
        ka_file = Path(f"/tmp/keepalived.{dump}")  # keepalived 2.2.7 has one fixed path
        ka_file.unlink(missing_ok=True)
        kill_pid(theirs.pid, sig)
        wait_until(lambda: complete(ka_file, dump), 5, "keepalived to write its dump")
        ka = ka_file.read_text()
        ka_file.unlink()
        mine = ours.pid_file.with_suffix(f".{dump}")  # beside vrrpd's -p pid file
        kill_pid(ours.pid, sig)
        wait_until(mine.exists, 5, "vrrpd's dump")
        return mine.read_text(), ka
    finally:
        for p in (ours, theirs):
            if p.running():
                p.sigterm()


def last_states(proc: RouterProcess) -> set[str]:
    """The state each instance last entered, from keepalived's `(NAME) Entering X STATE` lines."""
    last: dict[str, str] = {}
    for m in re.finditer(r"\((\w+)\) Entering ([A-Z]+) STATE", proc.output()):
        last[m[1]] = m[2]
    return set(last.values()) if len(last) == 2 else set()


def complete(path: Path, dump: str) -> bool:
    """keepalived writes its data file in place: the topology is complete once the section
    after it (Interfaces) has begun; its JSON once it parses."""
    if not path.exists():
        return False
    text = path.read_text()
    if dump == "data":
        return "------< Interfaces >------" in text
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_data_dump_reads_like_keepalived_for_the_same_config(lab):
    mine, theirs = dump_both(lab, "data")
    ours, ka = parse_data(mine), parse_data(theirs)
    assert set(ours) == set(ka) == {"VI_1", "VI_2"}
    for name in ours:
        assert ours[name]["State"] == "MASTER"
        assert ka[name]["State"] == "BACKUP"
        assert set(ours[name]) <= set(ka[name]) | {"Master router"}, name
        for key in ("Interface", "Virtual Router ID", "VRRP Version", "Advert interval",
                    "Accept", "Preempt", "Flags", "Down timer adverts", "vips"):  # fmt: skip
            assert ours[name].get(key) == ka[name].get(key), (name, key)


def test_json_dump_reads_like_keepalived_for_the_same_config(lab):
    mine, theirs = dump_both(lab, "json")
    ours, ka = json.loads(mine), json.loads(theirs)
    assert [o["data"]["iname"] for o in ours] == [k["data"]["iname"] for k in ka]
    for o, k in zip(ours, ka, strict=True):
        assert list(o["data"]) == list(k["data"])
        assert list(o["stats"]) == list(k["stats"])
        assert (o["data"]["state"], k["data"]["state"]) == (2, 1)
        assert o["stats"]["become_master"] == 1 and k["stats"]["advert_rcvd"] > 0
        for key in ("vrid", "ifp_ifname", "version", "adver_int", "nopreempt", "accept",
                    "garp_delay", "auth_type", "preempt_delay", "vmac_ifname"):  # fmt: skip
            assert o["data"][key] == k["data"][key], key
        assert [v.removesuffix(" set") for v in o["data"]["vips"]] == k["data"]["vips"]
