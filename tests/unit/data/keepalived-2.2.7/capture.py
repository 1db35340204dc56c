"""Re-capture keepalived 2.2.7's signal dumps that tests/unit/test_dumps_golden.py compares with.

Run as root from the checkout: `.venv/bin/python tests/unit/data/keepalived-2.2.7/capture.py`.
It builds a two-router lab (unique namespaces, removed on exit), runs Debian's keepalived in each
with `r1.conf` / `r2.conf` (priority 150 / 100), waits until r1 is MASTER, then sends SIGUSR1
(DATA), SIGUSR2 (STATS) and SIGRTMIN+2 (JSON) to each daemon by PID, one daemon at a time
(keepalived 2.2.7 always writes /tmp/keepalived.{data,stats,json}), and stores the files here
as `r1.data`, `r1.json`, ... together with both routers' link addresses (`links.json`), which
the golden test feeds to vrrpd's engine so both dumps describe the same routers.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "netns-lab"))

from vrrplab import Lab, wait_until  # noqa: E402
from vrrplab.netns import kill_pid, run  # noqa: E402
from vrrplab.procs import RouterProcess  # noqa: E402

DUMPS = (
    (signal.SIGUSR1, "data"),
    (signal.SIGUSR2, "stats"),
    (signal.SIGRTMIN + 2, "json"),
)


def conf(name: str, prio: int, src: str, peer: str) -> str:
    template = (HERE / "template.conf").read_text()
    return template.format(name=name, prio=prio, src=src, peer=peer)


def link_local(ns: str) -> str:
    out = json.loads(run(["ip", "-n", ns, "-j", "-6", "addr", "show", "dev", "eth0"]))
    return next(a["local"] for a in out[0]["addr_info"] if a["local"].startswith("fe80"))


def main() -> None:
    with Lab(routers=2, tag="kacap") as lab:
        r1, r2 = lab.routers
        for r in (r1, r2):  # dummy0: a tracked interface that is up; dummy1: one that is down
            for dev in ("dummy0", "dummy1"):
                run(["ip", "-n", r.ns, "link", "add", dev, "type", "veth", "peer", f"{dev}p"])
            for dev in ("dummy0", "dummy0p"):
                run(["ip", "-n", r.ns, "link", "set", dev, "up"])
        links = {r.name: {"addr4": str(r.addr4.ip), "addr6": link_local(r.ns)} for r in (r1, r2)}
        procs = []
        for me, peer, prio in ((r1, r2, 150), (r2, r1, 100)):
            text = conf(me.name, prio, str(me.addr4.ip), str(peer.addr4.ip))
            (HERE / f"{me.name}.conf").write_text(text)
            procs.append(RouterProcess(me, "keepalived", text, lab.workdir))
        for p in procs:
            p.start()
        for p in procs:
            p.wait_started()
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 20, "r1 to become MASTER")
        time.sleep(4)  # let every instance settle (0.5-1 s adverts, 3 s down timers)
        for p in procs:
            for sig, ext in DUMPS:
                src = Path(f"/tmp/keepalived.{ext}")
                src.unlink(missing_ok=True)
                kill_pid(p.pid, sig)
                wait_until(src.exists, 5, f"{p.node.name} to write {src}")
                time.sleep(0.3)  # keepalived writes in place; let it finish
                shutil.move(src, HERE / f"{p.node.name}.{ext}")
            Path("/tmp/keepalived_parent.data").unlink(missing_ok=True)
        for p in procs:
            p.sigterm()
        (HERE / "links.json").write_text(json.dumps(links, indent=2) + "\n")


if __name__ == "__main__":
    main()
