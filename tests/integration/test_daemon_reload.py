"""SIGHUP reload of real vrrpd daemons in the lab (keepalived.md 3.2 "HUP (RELOAD)", issue 6).

r1 (priority 150) and r2 (priority 100) run vrrpd with VRRPv3 at 100 ms adverts; every instance
has a generic `notify` script that appends its arguments (`INSTANCE NAME STATE PRIO`) to a file
per router, and `vrrp_garp_master_delay 0`, so every gratuitous ARP after the election comes from
the reload. Each case rewrites a keepalived.conf, sends SIGHUP (or `vrrpctl reload`), waits for
`Reload complete` / `Reload aborted` in the log, then checks what keepalived would show: the
kernel's addresses, the state lines, the notify lines (none for a matched MASTER: read after the
daemon stopped, when every notify has run), the wire, and the client still reaching the VIP.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab.capture import Capture
from vrrplab.netns import CLEANUP, kill_pid, ns_exec, run
from vrrplab.ping import Pinger
from vrrplab.procs import STATE_LINE, RouterProcess

VIP, VIP2, VIP3 = "192.0.2.100", "192.0.2.101", "192.0.2.102"
ERROR_LINE = re.compile(r"keepalived\.conf:\d+:\d+: error: ")


@dataclass(frozen=True)
class Inst:
    name: str
    vrid: int
    vips: tuple[str, ...]
    priority: int | None = None  # None: the router's
    extra: tuple[str, ...] = ()


VI_1 = Inst("VI_1", 51, (VIP,))
VI_2 = Inst("VI_2", 52, (VIP3,))


class Router:
    """One vrrpd with its config, its notify log, and reloads."""

    def __init__(
        self, lab, node, priority: int, insts: tuple[Inst, ...], glob: tuple[str, ...] = ()
    ) -> None:
        self.lab, self.node, self.priority, self.glob = lab, node, priority, glob
        here = lab.workdir / node.name
        here.mkdir(parents=True, exist_ok=True)
        self.notify_log = here / "notify.log"
        self.script = here / "notify.sh"
        self.script.write_text(f'#!/bin/sh\necho "$@" >> {self.notify_log}\n')
        self.script.chmod(0o755)
        self.proc = RouterProcess(node, "vrrpd", self.conf(insts), lab.workdir)

    def conf(self, insts: tuple[Inst, ...]) -> str:
        glob = "".join(f"    {g}\n" for g in self.glob)
        out = [f"global_defs {{\n    router_id {self.node.name}\n    script_user root\n"
               f"    vrrp_garp_master_delay 0\n{glob}}}\n"]  # fmt: skip
        for i in insts:
            body = [
                "state BACKUP", f"interface {self.node.ifname}", f"virtual_router_id {i.vrid}",
                f"priority {i.priority or self.priority}", "version 3", "advert_int 0.1",
                f'notify "{self.script}"', *i.extra,
                "virtual_ipaddress {\n" + "".join(f"        {v}/24\n" for v in i.vips) + "    }",
            ]  # fmt: skip
            out.append(f"vrrp_instance {i.name} {{\n" + "".join(f"    {b}\n" for b in body) + "}\n")
        return "\n".join(out)

    def reload(self, insts: tuple[Inst, ...] | None = None, text: str = "", ctl: bool = False):
        """Rewrite the config, ask for a reload, return the log written by it."""
        mark = self.proc.mark()
        self.proc.conf.write_text(text or self.conf(insts or ()))
        if ctl:
            argv = [sys.executable, "-m", "vrrpd.ctl", "-p", str(self.proc.pid_file), "reload"]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
            assert out.returncode == 0 and out.stdout.strip() == "reload requested", out
        else:
            kill_pid(self.proc.pid, signal.SIGHUP)
        done = ("Reload complete", "Reload aborted")
        wait_until(lambda: any(d in self.proc.output(mark) for d in done), 15, "the reload")
        return self.proc.output(mark)

    def last_states(self) -> dict[str, str]:
        return {m["inst"]: m["state"] for m in STATE_LINE.finditer(self.proc.output())}

    def notifies(self) -> list[str]:
        return self.notify_log.read_text().splitlines() if self.notify_log.exists() else []


def _read(fd: int, lines: list[str]) -> list[str]:
    """What the FIFO holds now, appended to `lines` (its reader's running record)."""
    with contextlib.suppress(BlockingIOError):
        lines += os.read(fd, 65536).decode().splitlines()
    return lines


def start(
    lab, insts1: tuple[Inst, ...], insts2: tuple[Inst, ...], glob1: tuple[str, ...] = ()
) -> list[Router]:
    """r1 MASTER of every instance, then r2 BACKUP of every instance: started in that order so
    the notify logs hold no start-up race (r2 hears r1 from its first second)."""
    r1 = Router(lab, lab.routers[0], 150, insts1, glob1)
    r2 = Router(lab, lab.routers[1], 100, insts2)
    r1.proc.start()
    r1.proc.wait_started()
    for inst in insts1:
        for vip in inst.vips:
            wait_until(lambda v=vip: lab.owners(v) == ["r1"], 10, f"r1 to hold {vip}")
    r2.proc.start()
    r2.proc.wait_started()
    names = {i.name for i in insts2}
    wait_until(lambda: r2.last_states() == dict.fromkeys(names, "BACKUP"), 10, "r2 in BACKUP")
    return [r1, r2]


def stop(routers: list[Router]) -> None:
    """Backups first, so no router takes over on the way out."""
    for r in reversed(routers):
        if r.proc.running():
            r.proc.sigterm()


def pinging(lab, vip: str) -> Pinger:
    """`ping -i 0.01` from the client, once it has had replies (so it spans what follows)."""
    pinger = Pinger(lab.client.ns, vip, lab.workdir / f"ping-{vip}.txt").start()
    wait_for_replies(pinger, 5)
    return pinger


def wait_for_replies(pinger: Pinger, more: int) -> None:
    def replies() -> int:
        return pinger.out.read_text(errors="replace").count("icmp_seq=")

    want = replies() + more
    wait_until(lambda: replies() >= want, 10, f"{more} more ping replies")


def assert_no_transition(log: str) -> None:
    assert not STATE_LINE.search(log), f"a state changed during the reload:\n{log}"
    assert "Traceback" not in log


def garps(cap: Capture, node, target: str) -> int:
    """Gratuitous ARPs (sender = target = the address) `node` sent for `target`."""
    return sum(
        1
        for e in cap.events()
        if e.kind == "arp" and e.src_mac == node.mac and e.target == target and e.src == target
    )


class AddrMonitor:
    """`ip -o monitor address` inside a namespace: every address the kernel adds or removes.

    Started and proven live (a probe address on lo must show up) before the reload it watches.
    """

    PROBE = "203.0.113.250/32"

    def __init__(self, ns: str, out: Path) -> None:
        self.ns, self.out = ns, out
        with out.open("wb") as f:
            self.proc = subprocess.Popen(ns_exec(ns, "ip", "-o", "monitor", "address"), stdout=f)
        CLEANUP.pids.append(self.proc.pid)
        wait_until(self._probe, 5, "ip monitor to listen", interval=0.1)

    def _probe(self) -> bool:
        """Add the probe address again (the monitor may not have subscribed to the last one)."""
        run(ns_exec(self.ns, "ip", "addr", "del", self.PROBE, "dev", "lo"), check=False)
        run(ns_exec(self.ns, "ip", "addr", "add", self.PROBE, "dev", "lo"))
        return "203.0.113.250" in self.out.read_text()

    def stop(self) -> str:
        kill_pid(self.proc.pid, signal.SIGTERM)
        self.proc.wait(5)
        CLEANUP.pids.remove(self.proc.pid)
        return self.out.read_text()


# -- cases --------------------------------------------------------------------------------------


def test_vip_added_then_removed_on_both_routers_without_a_transition(lab):
    routers = start(lab, (VI_1,), (VI_1,))
    r1, r2 = routers
    pinger = pinging(lab, VIP)
    try:
        bigger = (Inst("VI_1", 51, (VIP, VIP2)),)
        with Capture(lab.client.ns) as cap:  # started after the election's gratuitous ARPs
            logs = [r1.reload(bigger), r2.reload(bigger)]
            wait_until(lambda: lab.owners(VIP2) == ["r1"], 5, "r1 to add 192.0.2.101")
            wait_until(lambda: garps(cap, r1.node, VIP2), 5, "a gratuitous ARP for .101")
            assert garps(cap, r1.node, VIP) == 0  # only the new address is announced
        wait_until(lambda: lab.client_reaches(VIP2), 5, "the client to reach .101")
        logs += [r1.reload((VI_1,)), r2.reload((VI_1,))]
        wait_until(lambda: lab.owners(VIP2) == [], 5, "r1 to remove 192.0.2.101")
        assert lab.owners(VIP) == ["r1"]
        for log in logs:
            assert_no_transition(log)
        assert "(VI_1) setting VIPs." in logs[0] and "(VI_1) removing VIPs." in logs[2]
    finally:
        stats = pinger.stop()
        stop(routers)
    assert stats.sent >= 10 and stats.lost <= 1, stats  # one may be in flight at the stop
    assert r1.notifies() == ["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150",
                             "INSTANCE VI_1 STOP 150"]  # fmt: skip
    assert r2.notifies() == ["INSTANCE VI_1 BACKUP 100", "INSTANCE VI_1 STOP 100"]


def test_vip_moved_between_two_masters_is_never_removed(lab):
    """keepalived's man page: a move may need two reloads. One reload; the address stays."""
    routers = start(lab, (Inst("VI_1", 51, (VIP, VIP2)), VI_2), (VI_1, VI_2))
    r1, _ = routers
    pinger = pinging(lab, VIP2)
    try:
        monitor = AddrMonitor(r1.node.ns, lab.workdir / "monitor.txt")
        try:
            log = r1.reload((VI_1, Inst("VI_2", 52, (VIP3, VIP2))))
        finally:
            seen = monitor.stop()
        assert_no_transition(log)
        assert "(VI_2) setting VIPs." in log
        assert not [ln for ln in seen.splitlines() if "Deleted" in ln and VIP2 in ln], seen
        assert lab.owners(VIP2) == ["r1"]
        wait_for_replies(pinger, 5)
    finally:
        stats = pinger.stop()
        stop(routers)
    assert stats.sent >= 10 and stats.lost <= 1, stats
    assert r1.notifies().count("INSTANCE VI_2 MASTER 150") == 1


def _vrrp_raw6(pid: int) -> list[str]:
    """The namespace's raw IPv6 sockets for protocol 112 (a raw socket's "port" is its
    protocol: 0x0070)."""
    lines = Path(f"/proc/{pid}/net/raw6").read_text().splitlines()[1:]
    return [ln for ln in lines if ln.split()[1].endswith(":0070")]


def test_removed_last_ipv6_instance_closes_its_socket(lab):
    """Sockets are per (interface, family): the reload that removes the last IPv6 instance
    closes the IPv6 socket, once its priority-0 advert has gone out on it."""
    vi6 = Inst("VI_6", 56, ("2001:db8::100",))
    routers = start(lab, (VI_1, vi6), (VI_1, vi6))
    r1 = routers[0]
    try:
        assert len(_vrrp_raw6(r1.proc.pid)) == 1
        log = r1.reload((VI_1,))
        assert "(VI_6) sent 0 priority" in log, log
        assert f"closed the VRRP socket on {r1.node.ifname} (IPv6)" in log, log
        assert _vrrp_raw6(r1.proc.pid) == []
        wait_until(lambda: lab.owners("2001:db8::100") == ["r2"], 5, "r2 to take VI_6")
        assert lab.owners(VIP) == ["r1"]
        assert_no_transition(log)
        log = r1.reload((VI_1, vi6))  # and back: a new socket, the instance starts as at boot
        assert "(VI_6) Entering BACKUP STATE" in log, log
        assert len(_vrrp_raw6(r1.proc.pid)) == 1
    finally:
        stop(routers)


def test_renamed_instance_keeps_running_under_its_new_name(lab):
    routers = start(lab, (VI_1,), (VI_1,))
    r1, _ = routers
    try:
        log = r1.reload((Inst("WEB", 51, (VIP,)),), ctl=True)  # vrrpctl reload sends SIGHUP
        assert_no_transition(log)
        assert "sent 0 priority" not in log
        assert lab.owners(VIP) == ["r1"]
        stats = r1.proc.dump_stats()
        assert "VRRP Instance: WEB" in stats and "VRRP Instance: VI_1" not in stats
    finally:
        stop(routers)
    assert r1.notifies() == ["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150",
                             "INSTANCE WEB STOP 150"]  # fmt: skip


def test_removed_master_sends_priority_zero_and_the_peer_takes_over(lab):
    """...and its DELETED line reaches the notify FIFO, closed and reopened by the reload, after
    the kept instance's state line (`fifo_write_vrrp_states_on_reload`)."""
    fifo = lab.workdir / "r1.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # keeps the pipe's lines across reopen
    deleted = f'notify_deleted "{lab.workdir}/r1/notify.sh deleted"'
    glob1 = (f"vrrp_notify_fifo {fifo}", "fifo_write_vrrp_states_on_reload")
    routers = start(lab, (VI_1, Inst("VI_2", 52, (VIP3,), extra=(deleted,))), (VI_1, VI_2),
                    glob1=glob1)  # fmt: skip
    r1, r2 = routers
    lines: list[str] = []
    try:
        with Capture(lab.client.ns) as cap:
            mark2 = r2.proc.mark()
            log = r1.reload((VI_1,))
            wait_until(lambda: lab.owners(VIP3) == ["r2"], 5, "r2 to take 192.0.2.102")
            zero = [e for e in cap.events() if e.kind == "advert" and e.src_mac == r1.node.mac
                    and e.vrid == 52 and e.priority == 0]  # fmt: skip
        assert len(zero) >= 1, "r1 never sent priority 0 for VRID 52"
        assert "(VI_2) sent 0 priority" in log and "(VI_2) removing VIPs." in log
        assert "(VI_2) Entering MASTER STATE" in r2.proc.output(mark2)
        assert lab.owners(VIP) == ["r1"]  # VI_1 untouched
        assert_no_transition(log)  # keepalived logs no state line for a deleted instance
        wait_until(lambda: 'INSTANCE "VI_2" DELETED 150' in _read(reader, lines), 5, "the FIFO")
        order = [ln for ln in lines if ln.startswith('INSTANCE "VI_2"')]
        assert order[-2:] == ['INSTANCE "VI_2" MASTER 150', 'INSTANCE "VI_2" DELETED 150']
        # VI_1 entered MASTER once; its line is written again by the reload, before the DELETED
        assert lines[-2:] == ['INSTANCE "VI_1" MASTER 150', 'INSTANCE "VI_2" DELETED 150']
        assert lines.count('INSTANCE "VI_1" MASTER 150') == 2, lines
    finally:
        stop(routers)
        os.close(reader)
    notes = r1.notifies()
    assert "INSTANCE VI_2 DELETED 150" in notes and "deleted" in notes
    assert "INSTANCE VI_2 STOP 150" not in notes  # gone before the stop


def test_config_with_errors_keeps_the_running_config(lab):
    routers = start(lab, (VI_1,), (VI_1,))
    r1, _ = routers
    try:
        bigger = (Inst("VI_1", 51, (VIP, VIP2)),)
        broken = r1.conf(bigger).replace("virtual_router_id 51", "virtual_router_id 300")
        log = r1.reload(text=broken)
        assert ERROR_LINE.search(log), log
        assert "Reload aborted" in log and "Reload complete" not in log
        assert r1.proc.running() and lab.owners(VIP) == ["r1"] and lab.owners(VIP2) == []
        assert_no_transition(log)
        fixed = r1.reload(bigger)  # the next good file applies
        assert "Reload complete" in fixed
        wait_until(lambda: lab.owners(VIP2) == ["r1"], 5, "r1 to add 192.0.2.101")
    finally:
        stop(routers)


def test_priority_lowered_below_the_peer_fails_over_by_preemption(lab):
    routers = start(lab, (VI_1,), (VI_1,))
    r1, r2 = routers
    try:
        mark2 = r2.proc.mark()
        log = r1.reload((Inst("VI_1", 51, (VIP,), priority=50),))
        assert "(VI_1) Changing effective priority from 150 to 50" in log
        wait_until(lambda: lab.owners(VIP) == ["r2"], 5, "r2 (100) to preempt")
        wait_until(lambda: r1.last_states() == {"VI_1": "BACKUP"}, 5, "r1 to go BACKUP")
        assert "(VI_1) Entering MASTER STATE" in r2.proc.output(mark2)
        wait_until(lambda: lab.client_reaches(VIP), 5, "the client to reach the VIP on r2")
    finally:
        stop(routers)
    assert r1.notifies()[:3] == ["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150",
                                 "INSTANCE VI_1 BACKUP 50"]  # fmt: skip


@pytest.mark.parametrize("lab", [1], indirect=True)
def test_added_instance_starts_as_at_boot_and_the_added_tracker_runs(lab):
    (r1,) = [Router(lab, lab.routers[0], 150, (VI_1,))]
    r1.proc.start()
    r1.proc.wait_started()
    try:
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 to hold the VIP")
        script = 'vrrp_script chk {\n    script "/bin/true"\n    interval 0.2\n    weight 10\n}\n'
        tracked = Inst("VI_2", 52, (VIP3,), extra=("track_script {\n        chk\n    }",))
        log = r1.reload(text=script + r1.conf((VI_1, tracked)))
        assert "(VI_2) Entering BACKUP STATE (init)" in log
        assert not [m for m in STATE_LINE.finditer(log) if m["inst"] == "VI_1"]
        wait_until(lambda: lab.owners(VIP3) == ["r1"], 10, "VI_2 to become MASTER")
        wait_until(lambda: "Changing effective priority from 150 to 160" in r1.proc.output(),
                   10, "the new tracker to add its weight")  # fmt: skip
        again = r1.reload(text=script + r1.conf((VI_1, tracked)))  # unchanged: nothing moves
        assert "VRRP_Script(chk) considered successful on reload" in again
        assert_no_transition(again)
    finally:
        stop([r1])
    assert r1.proc.output().count("Changing effective priority") == 1  # read after the stop


@pytest.mark.parametrize("lab", [1], indirect=True)
def test_vmac_of_an_added_instance_is_created_and_removed_with_it(lab):
    r1 = Router(lab, lab.routers[0], 150, (VI_1,))
    r1.proc.start()
    r1.proc.wait_started()
    vmac = Inst("VI_2", 52, (VIP3,), extra=("use_vmac",))
    try:
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 to hold the VIP")
        log = r1.reload((VI_1, vmac))
        assert "(VI_2) Interface vrrp.52 created" in log
        assert "(VI_2) Entering BACKUP STATE (init)" in log  # not FAULT: its link is known
        wait_until(lambda: _has(r1.node.ns, "vrrp.52", VIP3), 10, "192.0.2.102 on vrrp.52")
        log = r1.reload((VI_1,))
        assert "(VI_2) sent 0 priority" in log
        wait_until(lambda: not _link_exists(r1.node.ns, "vrrp.52"), 5, "vrrp.52 to go")
        assert lab.owners(VIP) == ["r1"]
        assert not [m for m in STATE_LINE.finditer(log) if m["inst"] == "VI_1"]
    finally:
        stop([r1])


def _link_exists(ns: str, dev: str) -> bool:
    return subprocess.run(["ip", "-n", ns, "link", "show", "dev", dev], capture_output=True,
                          check=False).returncode == 0  # fmt: skip


def _has(ns: str, dev: str, address: str) -> bool:
    out = subprocess.run(["ip", "-n", ns, "-o", "addr", "show", "dev", dev], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return f" {address}/" in out
