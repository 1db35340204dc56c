"""A LAN in namespaces: one bridge namespace, router namespaces r1..rN and a client.

Each node has `eth0`, one end of a veth pair whose other end (`p-<node>`) is a port of `br0` in the
bridge namespace. Addresses come from 192.0.2.0/24 and 2001:db8::/64 only. DAD is off in every lab
namespace so addresses are usable at once. Failure injection works on either veth end: the router
side (`link down`, the router notices) or the bridge side (`partition`, the router does not).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_address
from pathlib import Path
from types import TracebackType

from vrrplab.netns import CLEANUP, LabError, create_ns, delete_ns, run, sysctl, unique_prefix

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

    # -- failure injection ------------------------------------------------------------------

    def link_down(self, node: Node) -> None:
        """Router-side carrier loss: the router sees its interface go down."""
        run(["ip", "-n", node.ns, "link", "set", node.ifname, "down"])

    def link_up(self, node: Node) -> None:
        run(["ip", "-n", node.ns, "link", "set", node.ifname, "up"])

    def partition(self, node: Node, cut: bool = True) -> None:
        """Bridge-side cut: the router's link stays up but nothing reaches the LAN."""
        run(["ip", "-n", self.bridge_ns, "link", "set", node.port, "down" if cut else "up"])

    def loss(self, node: Node, percent: float) -> None:
        """Drop `percent`% of what the router sends, with netem on the router's veth.

        Needs `sch_netem` in the kernel; raises `LabError` saying so when it is missing.
        """
        args = ["tc", "qdisc", "replace", "dev", node.ifname, "root", "netem", "loss"]
        try:
            run(ns_tc(node.ns, [*args, f"{percent}%"]))
        except LabError as exc:
            raise LabError(f"packet loss needs sch_netem (tc netem): {exc}") from exc

    def clear_loss(self, node: Node) -> None:
        run(ns_tc(node.ns, ["tc", "qdisc", "del", "dev", node.ifname, "root"]), check=False)


def ns_tc(ns: str, args: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]
