"""The LVS examples (examples/lvs-dr, examples/lvs-nat) carry client traffic, in the VM.

Each example runs as written: its files are read where they are in the checkout (no copy, no
path or address rewriting: the lab's addresses are the examples' own). The directors r1 (dir1,
192.0.2.11) and r2 (dir2, .12) run the real vrrpd, r1 with `keepalived.conf -i dir1` and r2 with
`dir2.yaml` (the two front-ends, side by side); the real servers r3 (rs1, .13) and r4 (rs2, .14)
run nginx answering their own name, set up by the example's `realserver.sh`. The client fetches
the VIP with curl and must get answers from both real servers through r1's IPVS; then r1 is cut
off the LAN (bridge side), r2 takes the VIP(s) over, and the client must again reach both real
servers, now through r2's IPVS.

- DR: one subnet; the real servers hold the VIP on `lo` with arp_ignore=1 / arp_announce=2, so
  only the master director answers ARP for it (asked on the wire); replies go straight back.
- NAT: the client is outside (198.51.100.2 on the same LAN, as the README's lab section says),
  the real servers route via the inside VIP 192.0.2.1, which the sync group keeps on the master
  together with the service VIP 198.51.100.100; the directors run the example's `director.sh`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from vm_guest import ipvsadm, services, vrrpd_argv
from vrrplab import Lab, wait_until
from vrrplab.netns import run
from vrrplab.procs import RouterProcess
from vrrplab.services import Nginx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_S = 120
FAILOVER_S = 30


@dataclass(frozen=True)
class Example:
    name: str  # the directory under examples/
    vip: str  # what the client connects to
    held: tuple[str, ...]  # what the VRRP master holds
    method: str  # ipvsadm's word for the forwarding method

    def file(self, name: str) -> Path:
        return EXAMPLES / self.name / name


DR = Example("lvs-dr", "192.0.2.100", ("192.0.2.100",), "Route")
NAT = Example("lvs-nat", "198.51.100.100", ("198.51.100.100", "192.0.2.1"), "Masq")


def director_argv(example: Example, host: str, yaml: bool) -> list[str]:
    """vrrpd on the example's own file: `keepalived.conf -i HOST` or `HOST.yaml`."""
    conf = example.file(f"{host}.yaml" if yaml else "keepalived.conf")
    argv = vrrpd_argv() if yaml else vrrpd_argv("-i", host)
    return [str(conf) if a == "{conf}" else a for a in argv]


def setup(lab: Lab, example: Example) -> None:
    """What the README tells to run on each host, run in the host's namespace."""
    r1, r2, r3, r4 = lab.routers
    assert lab.client is not None
    for rs in (r3, r4):
        run(["ip", "netns", "exec", rs.ns, "sh", str(example.file("realserver.sh")), "start"])
    if example is NAT:
        for director in (r1, r2):
            run(["ip", "netns", "exec", director.ns, "sh", str(example.file("director.sh")),
                 "start"])  # fmt: skip
        run(["ip", "-n", lab.client.ns, "addr", "add", "198.51.100.2/24", "dev", "eth0"])


def fetch(lab: Lab, vip: str, count: int = 4) -> list[str]:
    """`count` HTTP GETs of the VIP from the client; each answer is a real server's name."""
    assert lab.client is not None
    argv = ["ip", "netns", "exec", lab.client.ns, "curl", "-s", "-m", "5", f"http://{vip}/"]
    out = []
    for _ in range(count):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        out.append(proc.stdout.strip() or f"curl rc {proc.returncode}")
    return out


def connections(ns: str, vip: str) -> int:
    """IPVS connections counted for the virtual service (the estimator lags about 2 s)."""
    for line in ipvsadm(ns, "-Ln", "--stats").splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == f"{vip}:80":
            return int(words[2])
    return 0


def both_answer(lab: Lab, vip: str) -> bool:
    return set(fetch(lab, vip)) == {"r3", "r4"}


def holds_all(lab: Lab, example: Example, name: str) -> bool:
    return all(lab.owners(v) == [name] for v in example.held)


@pytest.mark.parametrize("example", [DR, NAT], ids=["DR", "NAT"])
def test_example_carries_traffic_through_the_master_and_after_failover(
    example: Example, tmp_path: Path
) -> None:
    with Lab(routers=4, tag=example.name.replace("-", ""), workdir=tmp_path) as lab:
        r1, r2, r3, r4 = lab.routers
        setup(lab, example)
        web = [Nginx(n, tmp_path, page=n.name) for n in (r3, r4)]
        directors = [
            RouterProcess(d, "vrrpd", "", tmp_path, argv=director_argv(example, host, yaml))
            for d, host, yaml in ((r1, "dir1", False), (r2, "dir2", True))
        ]
        want = {
            f"TCP {example.vip}:80 rr": [f"192.0.2.{h}:80 {example.method} 1" for h in (13, 14)]
        }
        try:
            for server in web:
                server.start()
            for proc in directors:
                proc.start()
            for proc in directors:
                proc.wait_started(START_S)
            wait_until(lambda: holds_all(lab, example, "r1"), START_S, "r1 to hold the VIP(s)")
            for d in (r1, r2):  # the table is programmed on both directors
                wait_until(lambda d=d: services(d.ns) == want, START_S, f"{d.name}'s IPVS table")
            if example is DR:  # realserver.sh's arp_ignore: only the master answers ARP
                assert lab.answering_macs(example.vip) == [r1.mac]
            wait_until(lambda: both_answer(lab, example.vip), FAILOVER_S, "r3 and r4 through r1")
            wait_until(lambda: connections(r1.ns, example.vip) >= 2, 10, "r1's IPVS counters")
            lab.partition(r1)  # r1 is cut off: r2 must take the VIP(s) and the traffic
            wait_until(lambda: holds_all(lab, example, "r2"), FAILOVER_S, "r2 to take over")
            wait_until(lambda: both_answer(lab, example.vip), FAILOVER_S, "r3 and r4 through r2")
            wait_until(lambda: connections(r2.ns, example.vip) >= 2, 10, "r2's IPVS counters")
            for proc in directors:
                proc.sigterm(30)
                assert "Traceback" not in proc.output(), proc.output()
        finally:
            for proc in directors:
                if proc.running():
                    proc.kill9()
            for server in web:
                server.stop()
