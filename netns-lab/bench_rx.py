#!/usr/bin/env python3
"""Receive-path micro-benchmark: what a Backup spends per received advert, in-process.

No sockets and no namespaces: N instances (keepalived.conf from vrrplab.bench_conf, VRRPv3 at
100 ms, priority 100) and the N adverts their Master (192.0.2.1, priority 150) sends, as the raw
IPv4 packets a raw socket hands up. Timed, per advert, median of `--repeat` runs of `--rounds`
rounds of N adverts:
- parse: RawSocket._datagram4 (IP header, kernel timestamp, interned addresses);
- engine: Engine.receive_datagram for every advert of a round, then one next_deadline();
- runtime: the same through Runtime (one queued batch per round, _dispatch, arrival dating of
  adverts without a kernel stamp).
This is the hot-cache cost; the lab load benchmark (bench.py) measures the daemon as it runs.
Results are appended to results/bench_rx.jsonl with the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vrrplab.bench_conf import BenchSpec, bench_conf
from vrrplab.results import write_result

from vrrpd.config.loader import load_config
from vrrpd.core.inputs import LinkState
from vrrpd.io import rawsock
from vrrpd.io.files import FileSource
from vrrpd.proto.advert import Advert
from vrrpd.proto.constants import VRRP_GROUP4
from vrrpd.proto.packet import encode
from vrrpd.runtime.daemon import Runtime

MASTER, OURS = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")


def packets(config) -> list[bytes]:  # type: ignore[no-untyped-def]
    out = []
    for inst in config.instances:
        advert = Advert(3, inst.vrid, 150, 10, tuple(v.ip for v in inst.vips))
        payload = encode(advert, MASTER, VRRP_GROUP4)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 1, 0, 255, 112, 0,
                             MASTER.packed, VRRP_GROUP4.packed)  # fmt: skip
        out.append(header + payload)
    return out


def per_advert(run: Callable[[], None], adverts: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) / adverts * 1e6)
    return round(statistics.median(times), 3)


async def measure(n: int, rounds: int, repeat: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as fh:
        fh.write(bench_conf(BenchSpec(instances=n, advert_int_s=0.1, version=3), "r2", 100))
        fh.flush()
        config, _ = load_config(fh.name, FileSource())
    rt = Runtime(config, detail=False)
    eng = rt.engine
    eng.on_link(LinkState("eth0", 2, True, OURS), 0.0)
    eng.start(0.0)
    sock = object.__new__(rawsock.RawSocket)
    sock.ifindex, sock.family, sock.interface = 2, 4, "eth0"
    stamp = [(socket.SOL_SOCKET, rawsock.SO_TIMESTAMPNS, struct.pack("qq", int(time.time()), 0))]
    raw = packets(config)
    dgrams = [sock._datagram4(p, stamp, b"") for p in raw]
    # Time moves 0.1 s a round, as it does between one advert of an instance and the next;
    # the runtime's adverts carry no kernel stamp, so their arrival is the time given.
    unstamped = [d._replace(rx_at=0.0) for d in dgrams if d is not None]
    clock = [1.0]

    def parse() -> None:
        for _ in range(rounds):
            for p in raw:
                sock._datagram4(p, stamp, b"")

    def engine() -> None:
        for _ in range(rounds):
            clock[0] += 0.1
            for d in dgrams:
                eng.receive_datagram(d, clock[0])  # type: ignore[arg-type]
            eng.next_deadline()

    def runtime() -> None:
        for _ in range(rounds):
            clock[0] += 0.1
            rt._put(list(unstamped))
            while not rt.queue.empty():
                rt._dispatch(rt.queue.get_nowait(), clock[0])
            eng.next_deadline()

    engine()  # fills the receive cache, as the first interval does in the daemon
    adverts = rounds * n
    cases = (("parse_us", parse), ("engine_us", engine), ("runtime_us", runtime))
    return {name: per_advert(fn, adverts, repeat) for name, fn in cases}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_rx.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=200)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-results", action="store_true")
    args = p.parse_args(argv)
    numbers = asyncio.run(measure(args.instances, args.rounds, args.repeat))
    print(f"{args.instances} instances, per advert (median of {args.repeat}): "
          + ", ".join(f"{k[:-3]} {v:.2f} us" for k, v in numbers.items()))  # fmt: skip
    if not args.no_results:
        write_result("bench_rx", {"instances": args.instances, "rounds": args.rounds, **numbers})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
