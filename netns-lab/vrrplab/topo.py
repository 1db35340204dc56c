"""A LAN in namespaces: one bridge namespace, router namespaces r1..rN and a client.

Each node has `eth0`, one end of a veth pair whose other end (`p-<node>`) is a port of `br0` in the
bridge namespace. Addresses come from 192.0.2.0/24 and 2001:db8::/64 only. DAD is off in every lab
namespace so addresses are usable at once. Failure injection: `link_down` (the router's own veth
end), `partition` (the bridge-side end: a veth loses carrier with its peer, so the router sees its
link go down too, like a switch port going dark), and `loss` (an nftables rule on the bridge port
drops a share of what the router sends while its link stays up; at 100% a partition the router
cannot notice).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_address
from pathlib import Path
from types import TracebackType

from vrrplab.netns import (
    CLEANUP,
    LabError,
    create_ns,
    delete_ns,
    ns_exec,
    run,
    sysctl,
    unique_prefix,
)

CLIENT_HOST = 2
ROUTER_HOST_BASE = 10


@dataclass
class Node:
    """One namespace on the LAN: `name` is the short name (r1, client), `ns` the real one."""

    name: str
    ns: str
    addr4: IPv4Interface
    addr6: IPv6Interface
    ifname: str = "eth0"
    port: str = ""
    mac: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class Lab:
    """Build with `with Lab(routers=2) as lab:`; everything is removed on exit, even on error."""

    def __init__(self, routers: int = 2, tag: str = "lab", workdir: Path | None = None) -> None:
        self.prefix = f"{unique_prefix()}-{tag}"
        self.bridge_ns = f"{self.prefix}-br"
        self.routers: list[Node] = []
        self.client: Node | None = None
        self.n_routers = routers
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.namespaces: list[str] = []

    # -- building ---------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.teardown()

    def build(self) -> None:
        self._new_ns(self.bridge_ns)
        br = ["ip", "-n", self.bridge_ns, "link"]
        run([*br, "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0"])
        run([*br, "set", "br0", "up"])
        for i in range(1, self.n_routers + 1):
            self.routers.append(self._add_node(f"r{i}", ROUTER_HOST_BASE + i))
        self.client = self._add_node("client", CLIENT_HOST)

    def _new_ns(self, ns: str) -> None:
        create_ns(ns)
        self.namespaces.append(ns)
        # No DAD: addresses (and link-locals) are usable at once; set before any link exists.
        for scope in ("all", "default"):
            sysctl(ns, f"net.ipv6.conf.{scope}.accept_dad", 0)

    def _add_node(self, name: str, host: int) -> Node:
        ns = f"{self.prefix}-{name}"
        self._new_ns(ns)
        port = f"p-{name}"
        node = Node(
            name=name,
            ns=ns,
            addr4=IPv4Interface(f"192.0.2.{host}/24"),
            addr6=IPv6Interface(f"2001:db8::{host:x}/64"),
            port=port,
        )
        run(["ip", "-n", self.bridge_ns, "link", "add", port, "type", "veth", "peer", "name",
             node.ifname, "netns", ns])  # fmt: skip
        run(["ip", "-n", self.bridge_ns, "link", "set", port, "master", "br0", "up"])
        ipn = ["ip", "-n", ns]
        run([*ipn, "addr", "add", str(node.addr4), "dev", node.ifname])
        run([*ipn, "-6", "addr", "add", str(node.addr6), "dev", node.ifname, "nodad"])
        run([*ipn, "link", "set", node.ifname, "up"])
        node.mac = self.link(node)["address"]
        return node

    def teardown(self) -> None:
        """Delete our namespaces (killing what runs inside) and the work dir. Idempotent."""
        for ns in reversed(self.namespaces):
            delete_ns(ns)
            if ns in CLEANUP.namespaces:
                CLEANUP.namespaces.remove(ns)
        self.namespaces.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- looking ----------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        for node in [*self.routers, *([self.client] if self.client else [])]:
            if node.name == name:
                return node
        raise LabError(f"no node {name}")

    def link(self, node: Node) -> dict[str, object]:
        out = run(["ip", "-n", node.ns, "-j", "link", "show", "dev", node.ifname])
        data: list[dict[str, object]] = json.loads(out)
        return data[0]

    def addresses(self, node: Node) -> list[dict[str, object]]:
        """`ip -j addr` entries (`addr_info`) on the node's LAN interface."""
        out = run(["ip", "-n", node.ns, "-j", "addr", "show", "dev", node.ifname], check=False)
        if not out.strip():
            return []
        data = json.loads(out)
        return list(data[0].get("addr_info", [])) if data else []

    def has_address(self, node: Node, address: str) -> bool:
        want = ip_address(address)
        return any(ip_address(a["local"]) == want for a in self.addresses(node))

    def owners(self, address: str) -> list[str]:
        """Names of the routers whose LAN interface holds `address` right now."""
        return [r.name for r in self.routers if self.has_address(r, address)]

    def client_reaches(self, address: str) -> bool:
        """One ping from the client to `address` (IPv4 or IPv6) answered within a second."""
        assert self.client is not None
        argv = ns_exec(self.client.ns, "ping", "-c", "1", "-W", "1", address)
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def answering_macs(self, address: str, wait_s: float = 0.3) -> list[str]:
        """MACs that answer the client's ARP request (IPv6: neighbour solicitation) for `address`.

        Asked on the wire, not read from the client's neighbour cache, so it shows who answers
        now. IPv4: arping, every reply within `wait_s`; IPv6: ndisc6, the first reply.
        """
        assert self.client is not None
        if ":" in address:
            argv = ["ndisc6", "-1", "-r", "3", "-w", "1000", address, self.client.ifname]
            out = run(ns_exec(self.client.ns, *argv), check=False)
            return [ln.split()[-1].lower() for ln in out.splitlines() if "link-layer" in ln]
        argv = ["arping", "-c", "1", "-w", f"{wait_s:g}", "-i", self.client.ifname, address]
        out = run(ns_exec(self.client.ns, *argv), check=False)
        return [ln.split()[3].lower() for ln in out.splitlines() if " from " in ln]

    # -- failure injection ------------------------------------------------------------------

    def link_down(self, node: Node) -> None:
        """Router-side carrier loss: the router sees its interface go down."""
        run(["ip", "-n", node.ns, "link", "set", node.ifname, "down"])

    def link_up(self, node: Node) -> None:
        run(["ip", "-n", node.ns, "link", "set", node.ifname, "up"])

    def partition(self, node: Node, cut: bool = True) -> None:
        """Bridge-side cut: the bridge port goes down, and with it the carrier of the router's
        veth end (the router sees its link down). For a cut it cannot see, use `loss(node, 100)`."""
        run(["ip", "-n", self.bridge_ns, "link", "set", node.port, "down" if cut else "up"])

    def loss(self, node: Node, percent: float) -> None:
        """Drop `percent`% of the frames `node` sends, at random, where they enter the bridge.

        An nftables `netdev` table on the bridge port's ingress (`numgen random`), so it needs
        neither sch_netem nor tc actions, and its counters (`loss_counts`) tell how many frames
        came and how many were dropped. The router's link stays up and it still hears the LAN.
        Calling it again replaces the rate (and resets the counters).
        """
        if not 0 <= percent <= 100:
            raise LabError(f"loss must be 0..100 %, not {percent}")
        share = round(percent * 100)  # in 1/10000, so 0.5 % works too
        pick = "" if share >= 10000 else f"numgen random mod 10000 < {share} "
        table = _loss_table(node)
        nft(self.bridge_ns, f"""
            table netdev {table} {{}}
            delete table netdev {table}
            table netdev {table} {{
                counter seen {{}}
                counter dropped {{}}
                chain ingress {{
                    type filter hook ingress device "{node.port}" priority 0; policy accept;
                    counter name "seen"
                    {pick}counter name "dropped" drop
                }}
            }}""")  # fmt: skip

    def loss_counts(self, node: Node) -> tuple[int, int]:
        """(frames seen, frames dropped) since the last `loss`; (0, 0) when there is none."""
        out = run(ns_exec(self.bridge_ns, "nft", "-j", "list", "counters", "table", "netdev",
                          _loss_table(node)), check=False)  # fmt: skip
        counts = {"seen": 0, "dropped": 0}
        for item in json.loads(out or "{}").get("nftables", []):
            counter = item.get("counter")
            if counter and counter.get("name") in counts:
                counts[counter["name"]] = int(counter["packets"])
        return counts["seen"], counts["dropped"]

    def clear_loss(self, node: Node) -> None:
        run(ns_exec(self.bridge_ns, "nft", "delete", "table", "netdev", _loss_table(node)),
            check=False)  # fmt: skip


def _loss_table(node: Node) -> str:
    return f"vrl_loss_{node.name}"


def nft(ns: str, script: str) -> None:
    """Run an nftables script inside `ns`; `LabError` naming what is missing when it fails."""
    try:
        proc = subprocess.run(ns_exec(ns, "nft", "-f", "-"), input=script, capture_output=True,
                              text=True, timeout=20, check=False)  # fmt: skip
    except OSError as exc:
        raise LabError(f"packet loss needs nftables (`nft`): {exc}") from exc
    if proc.returncode != 0:
        raise LabError(f"nft failed in {ns} (needs nf_tables in the kernel): "
                       f"{proc.stderr.strip()}")  # fmt: skip
