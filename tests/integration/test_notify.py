"""Notify hooks of the real vrrpd daemon: script argv and order, FIFO lines, sync groups.

Scripts append their argv to files; a FIFO reader (`cat`, started by the test) collects the
FIFO lines. Transitions are driven by the kernel (a link going down and up, the other router
taking over) and every wait polls with a deadline.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab.netns import CLEANUP, kill_pid
from vrrplab.procs import RouterProcess
from vrrplab.topo import Node

REC = '#!/bin/sh\nout="$1"\nshift\nprintf "%s\\n" "$*" >> "$out"\n'
LOWER = "MASTER_RX_LOWER_PRI"  # a master hearing the other's last adverts: timing-dependent


class FifoReader:
    """`cat FIFO > file`: the daemon creates the FIFO, we read it like an ops consumer."""

    def __init__(self, fifo: Path, out: Path) -> None:
        wait_until(fifo.exists, 10, f"the daemon to create {fifo}")
        self.out = out
        with out.open("wb") as fh:
            self.proc = subprocess.Popen(["cat", str(fifo)], stdout=fh, stdin=subprocess.DEVNULL)
        CLEANUP.pids.append(self.proc.pid)

    def lines(self) -> list[str]:
        return [ln for ln in self.out.read_text().splitlines() if LOWER not in ln]

    def close(self) -> None:
        """EOF comes when the daemon closed the FIFO; otherwise stop it by its PID."""
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            kill_pid(self.proc.pid, 9)
            self.proc.wait(5)
        CLEANUP.pids.remove(self.proc.pid)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def ip(node: Node, *args: str) -> None:
    subprocess.run(["ip", "-n", node.ns, *args], check=True, capture_output=True)


def holds(node: Node, address: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", node.ns, "-o", "addr", "show", "to", address],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return bool(out.strip())


def instance(name: str, vrid: int, iface: str, prio: int, vip: str, *, extra: str = "") -> str:
    return f"""vrrp_instance {name} {{
    state BACKUP
    interface {iface}
    virtual_router_id {vrid}
    priority {prio}
    version 3
    advert_int 0.1
{extra}    virtual_ipaddress {{
        {vip}
    }}
}}
"""


@pytest.mark.parametrize("lab", [1], indirect=True)
def test_notify_argv_order_and_fifo_lines(lab):
    (r1,) = lab.routers
    d = lab.workdir
    rec = d / "rec.sh"
    rec.write_text(REC)
    rec.chmod(0o755)
    states, generic, fifo = d / "states", d / "generic", d / "notify.fifo"
    notify = "".join(
        f'    {kw} "{rec} {out} {words}"\n'
        for kw, out, words in (
            ("notify_master", states, "master 'two words'"),
            ("notify_backup", states, "backup"),
            ("notify_fault", states, "fault"),
            ("notify_stop", states, "stop"),
            ("notify", generic, "gen"),
        )
    )
    conf = (
        f"global_defs {{\n    router_id r1\n    script_user root\n"
        f"    vrrp_notify_fifo {fifo}\n}}\n"
        + instance("VI_1", 51, "eth0", 150, "192.0.2.100/24", extra=notify)
    )
    proc = RouterProcess(r1, "vrrpd", conf, d)
    proc.start()
    reader = None
    try:
        proc.wait_started()
        reader = FifoReader(fifo, d / "fifo.out")
        wait_until(lambda: lines(states) == ["backup", "master two words"], 10, "BACKUP, MASTER")
        wait_until(lambda: holds(r1, "192.0.2.100"), 5, "r1 to hold the VIP")
        lab.link_down(r1)
        wait_until(lambda: lines(states)[-1:] == ["fault"], 10, "FAULT on link down")
        lab.link_up(r1)
        wait_until(lambda: len(lines(states)) == 5, 10, "BACKUP, MASTER after link up")
        proc.sigterm()  # STOP scripts run before the daemon exits
        assert lines(states) == [
            "backup", "master two words", "fault", "backup", "master two words", "stop",
        ]  # fmt: skip
        events = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
        wait_until(lambda: len(lines(generic)) == 6, 5, "every generic notify")
        assert lines(generic) == [f"gen INSTANCE VI_1 {e} 150" for e in events]
        reader.close()
        assert reader.lines() == [f'INSTANCE "VI_1" {e} 150' for e in events]
        out = proc.output()
        assert "SECURITY VIOLATION - scripts are being executed but script_security" in out
        assert "Traceback" not in out
    finally:
        if proc.running():
            proc.kill9()
        if reader is not None and reader.proc.poll() is None:
            reader.close()


def group_conf(node: Node, prio: int, fifo: Path, rec: Path, gen: Path) -> str:
    return (
        f"global_defs {{\n    router_id {node.name}\n    script_user root\n"
        f"    vrrp_notify_fifo {fifo}\n}}\n"
        "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n"
        f'    notify "{rec} {gen} grp"\n}}\n'
        + instance("VI_1", 51, "eth0", prio, "192.0.2.100/24")
        + instance("VI_2", 52, "eth1", prio, "198.51.100.100/24")
    )


def settled(reader: FifoReader, state: str) -> bool:
    """The last FIFO line of the group and of each member says `state`."""
    last = {ln.rsplit(" ", 2)[0]: ln.rsplit(" ", 2)[1] for ln in reader.lines()}
    return len(last) == 3 and set(last.values()) == {state}


def second_lan(lab) -> None:
    """A second bridge, br1, with an `eth1` on every router (198.51.100.0/24)."""
    br = ["ip", "-n", lab.bridge_ns, "link"]
    subprocess.run([*br, "add", "br1", "type", "bridge", "mcast_snooping", "0"], check=True)
    subprocess.run([*br, "set", "br1", "up"], check=True)
    for host, node in enumerate(lab.routers, start=11):
        port = f"q-{node.name}"
        subprocess.run(
            [*br, "add", port, "type", "veth", "peer", "name", "eth1", "netns", node.ns],
            check=True,
        )
        subprocess.run([*br, "set", port, "master", "br1", "up"], check=True)
        ip(node, "addr", "add", f"198.51.100.{host}/24", "dev", "eth1")
        ip(node, "link", "set", "eth1", "up")


def test_sync_group_fails_over_together_with_group_lines(lab):
    """VI_1 on eth0 and VI_2 on eth1 (a second LAN) in one sync group on each router. r1's eth1
    going down takes r1's whole group to FAULT; r2's group takes both VIPs together."""
    r1, r2 = lab.routers
    d = lab.workdir
    rec = d / "rec.sh"
    rec.write_text(REC)
    rec.chmod(0o755)
    second_lan(lab)
    procs, readers, gens = [], [], []
    for node, prio in ((r1, 150), (r2, 100)):
        fifo, gen = d / f"{node.name}.fifo", d / f"{node.name}.gen"
        procs.append(RouterProcess(node, "vrrpd", group_conf(node, prio, fifo, rec, gen), d))
        gens.append(gen)
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_started()
        readers = [FifoReader(d / f"{n.name}.fifo", d / f"{n.name}.fifo.out") for n in (r1, r2)]
        both = ("192.0.2.100", "198.51.100.100")
        wait_until(lambda: all(holds(r1, v) for v in both), 10, "r1 to hold both VIPs")
        wait_until(lambda: not any(holds(r2, v) for v in both), 10, "r2 to hold neither")
        wait_until(lambda: settled(readers[1], "BACKUP"), 5, "r2 to settle in BACKUP")
        seen = [len(r.lines()) for r in readers]
        gen_seen = len(lines(gens[1]))  # r2 may have won the start-up race for a moment

        ip(r1, "link", "set", "eth1", "down")
        wait_until(lambda: all(holds(r2, v) for v in both), 10, "r2 to take both VIPs")
        wait_until(lambda: len(readers[1].lines()) >= seen[1] + 3, 5, "r2's group lines")
        assert readers[0].lines()[seen[0] :] == [
            'INSTANCE "VI_2" FAULT 150',
            'INSTANCE "VI_1" FAULT 150',
            'GROUP "G1" FAULT 0',
        ]
        took = readers[1].lines()[seen[1] :]
        assert sorted(took[:2]) == ['INSTANCE "VI_1" MASTER 100', 'INSTANCE "VI_2" MASTER 100']
        assert took[2:] == ['GROUP "G1" MASTER 0']
        assert not holds(r1, "192.0.2.100")  # r1's healthy VI_1 left with its group
        assert "VRRP_Group(G1) Syncing instances to FAULT state" in procs[0].output()
        assert "VRRP_Group(G1) Syncing instances to MASTER state" in procs[1].output()

        seen = [len(r.lines()) for r in readers]
        ip(r1, "link", "set", "eth1", "up")
        wait_until(lambda: all(holds(r1, v) for v in both), 10, "r1 to preempt both back")
        wait_until(lambda: readers[1].lines()[-1:] == ['GROUP "G1" BACKUP 0'], 5, "r2 to yield")
        back = readers[0].lines()[seen[0] :]
        assert back[:3] == [
            'INSTANCE "VI_2" BACKUP 150',
            'INSTANCE "VI_1" BACKUP 150',
            'GROUP "G1" BACKUP 0',
        ]
        assert sorted(back[3:5]) == ['INSTANCE "VI_1" MASTER 150', 'INSTANCE "VI_2" MASTER 150']
        assert back[5:] == ['GROUP "G1" MASTER 0']

        for p in reversed(procs):  # the backup first: r1's priority 0 would promote r2
            p.sigterm()
        for r in readers:
            r.close()
        for r in readers:
            assert r.lines()[-3:] == [
                'INSTANCE "VI_1" STOP ' + ("150" if r is readers[0] else "100"),
                'INSTANCE "VI_2" STOP ' + ("150" if r is readers[0] else "100"),
                'GROUP "G1" STOP 0',
            ]
        assert lines(gens[1])[0] == "grp GROUP G1 BACKUP 0"  # start-up
        assert lines(gens[1])[gen_seen:] == [
            "grp GROUP G1 MASTER 0",
            "grp GROUP G1 BACKUP 0",
            "grp GROUP G1 STOP 0",
        ]
        for p in procs:
            assert "Traceback" not in p.output()
    finally:
        for p in procs:
            if p.running():
                p.kill9()
        for r in readers:
            if r.proc.poll() is None:
                r.close()
