"""A simulated LAN of pure engines in virtual time, for the convergence properties.

Every advert goes through the real codec (`encode` then `decode` inside the receiving engine), is
delivered to every other live node after a fixed wire delay, and may be lost. Nothing sleeps:
the simulation jumps from one deadline to the next.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from vrrpd.config.model import Config, GarpSpec, InstanceConfig, VipSpec
from vrrpd.core.actions import SendAdvert, State
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.proto.advert import Datagram
from vrrpd.proto.packet import encode

WIRE_DELAY_S = 50e-6
# Far above what a healthy run needs; a livelock (two masters answering each other for ever)
# fails the test instead of hanging it.
MAX_STEPS = 20_000


@dataclass
class Node:
    name: str
    addr: IPv4Address
    cfg: InstanceConfig
    engine: Engine | None = None

    @property
    def state(self) -> State | None:
        return None if self.engine is None else self.engine.instances["VI_1"].state

    @property
    def priority(self) -> int:
        assert self.engine is not None
        return self.engine.instances["VI_1"].effective_priority


@dataclass
class Lan:
    """N nodes on one segment; `loss` is the probability that one delivery is lost."""

    nodes: list[Node]
    rng: random.Random
    loss: float = 0.0
    now: float = 0.0
    _wire: list[tuple[float, int, int, Datagram]] = field(default_factory=list)
    _seq: int = 0
    _steps: int = 0

    @classmethod
    def build(
        cls, priorities: list[int], version: int, interval_cs: int, preempt: bool, seed: int
    ) -> Lan:
        nodes = []
        for i, prio in enumerate(priorities):
            cfg = InstanceConfig(
                name="VI_1", vrid=51, interface="eth0", version=version, priority=prio,
                advert_int_cs=interval_cs, preempt=preempt or prio == 255,
                vips=(VipSpec(IPv4Interface("192.0.2.100/32")),),
                garp=GarpSpec(master_delay_s=0.0),
            )  # fmt: skip
            nodes.append(Node(f"r{i}", IPv4Address(f"192.0.2.{i + 1}"), cfg))
        lan = cls(nodes, random.Random(seed))
        for i in range(len(nodes)):
            lan.start(i)
        return lan

    def start(self, i: int) -> None:
        node = self.nodes[i]
        node.engine = Engine(Config(instances=(node.cfg,)))
        node.engine.on_link(LinkState("eth0", 1, True, node.addr), self.now)
        self._emit(i, node.engine.start(self.now))

    def crash(self, i: int) -> None:
        self.nodes[i].engine = None

    def set_priority(self, i: int, base: int) -> None:
        engine = self.nodes[i].engine
        if engine is not None:
            self._emit(i, engine.set_priority("VI_1", self.now, base=base))

    def run_until(self, end: float, check: object = None) -> None:
        """Advance virtual time to `end`, calling `check(lan)` after every step if given."""
        while True:
            at = self._next_event()
            if at is None or at > end:
                self.now = end
                return
            self.now = at
            self._steps += 1
            assert self._steps < MAX_STEPS, f"simulation livelock at t={self.now:.6f}"
            self._step()
            if callable(check):
                check(self)

    def masters(self) -> list[Node]:
        return [n for n in self.nodes if n.state == State.MASTER]

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.engine is not None]

    def _next_event(self) -> float | None:
        times = [e.next_deadline() for n in self.nodes if (e := n.engine) is not None]
        pending = [t for t in times if t is not None]
        if self._wire:
            pending.append(self._wire[0][0])
        return min(pending) if pending else None

    def _step(self) -> None:
        while self._wire and self._wire[0][0] <= self.now:
            _, _, i, dgram = heapq.heappop(self._wire)
            engine = self.nodes[i].engine
            if engine is not None:
                self._emit(i, engine.receive_datagram(dgram, self.now))
        for i, node in enumerate(self.nodes):
            engine = node.engine
            if engine is not None and (at := engine.next_deadline()) is not None and at <= self.now:
                self._emit(i, engine.on_timer(self.now))

    def _emit(self, sender: int, actions: list[object]) -> None:
        for action in actions:
            if not isinstance(action, SendAdvert):
                continue
            src = self.nodes[sender].addr
            for dst in action.dsts:
                data = encode(action.advert, src, dst, checksum_as_v2=action.checksum_as_v2)
                for j, other in enumerate(self.nodes):
                    if j == sender or other.engine is None or self.rng.random() < self.loss:
                        continue
                    self._seq += 1
                    dgram = Datagram(data, src, dst, 1, 255)
                    heapq.heappush(self._wire, (self.now + WIRE_DELAY_S, self._seq, j, dgram))
