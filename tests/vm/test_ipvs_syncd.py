"""keepalived `lvs_sync_daemon` in the VM: the IPVS sync daemon follows the VRRP instance.

r1 runs the real vrrpd with `lvs_sync_daemon eth0 inst VI_1 id 7` and VI_1 at priority 100;
r2 runs plain VRRP at priority 200, started later. The kernel's sync daemons in r1's namespace
are read with `ipvsadm --list --daemon`: r1 alone becomes MASTER (master daemon only); r2
preempts it (r1 BACKUP: backup daemon only); r2 stops (r1 MASTER again: master only); r1 stops
(none left behind).
"""

from __future__ import annotations

from pathlib import Path

from vm_guest import ipvsadm, vrrpd_argv
from vrrplab import Lab, wait_until
from vrrplab.procs import RouterProcess

START_S = 120  # the daemon's start-up under software emulation
CHANGE_S = 30  # a VRRP transition at advert_int 1 s on a busy emulated CPU
SYNCD = "    lvs_sync_daemon eth0 inst VI_1 id 7\n"
CONF = """global_defs {{
    router_id {name}
    script_user root
{syncd}}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
"""


def daemons(ns: str) -> list[str]:
    """`ipvsadm --list --daemon` lines as `master syncid=7` / `backup syncid=7`, sorted."""
    out = []
    for line in ipvsadm(ns, "--list", "--daemon").splitlines():
        words = line.replace("(", " ").replace(",", " ").split()
        if len(words) > 1 and words[1] == "sync":
            out.append(f"{words[0]} " + " ".join(w for w in words if w.startswith("syncid=")))
    return sorted(out)


def _start(lab: Lab, idx: int, priority: int, syncd: str, tmp: Path) -> RouterProcess:
    node = lab.routers[idx]
    conf = CONF.format(name=node.name, syncd=syncd, priority=priority)
    proc = RouterProcess(node, "vrrpd", conf, tmp, argv=vrrpd_argv())
    proc.start()
    proc.wait_started(START_S)
    return proc


def _expect(ns: str, want: list[str], proc: RouterProcess, timeout: float, what: str) -> None:
    try:
        wait_until(lambda: daemons(ns) == want, timeout, what, interval=0.5)
    except Exception as exc:
        raise AssertionError(f"{exc}\ndaemons: {daemons(ns)}\n{proc.output()[-3000:]}") from exc


def test_sync_daemon_follows_the_instance(tmp_path: Path) -> None:
    with Lab(routers=2, tag="syncd", workdir=tmp_path) as lab:
        ns = lab.routers[0].ns
        r1 = _start(lab, 0, 100, SYNCD, tmp_path)
        r2 = None
        try:
            wait_until(lambda: "Entering MASTER STATE" in r1.output(), START_S, "r1 MASTER")
            _expect(ns, ["master syncid=7"], r1, CHANGE_S, "the master sync daemon only")
            mark = r1.mark()
            r2 = _start(lab, 1, 200, "", tmp_path)
            wait_until(lambda: "Entering BACKUP STATE" in r1.output(mark), START_S, "r1 BACKUP")
            _expect(ns, ["backup syncid=7"], r1, CHANGE_S, "the backup sync daemon only")
            mark = r1.mark()
            r2.sigterm(30)
            wait_until(lambda: "Entering MASTER STATE" in r1.output(mark), CHANGE_S, "r1 back")
            _expect(ns, ["master syncid=7"], r1, CHANGE_S, "the master sync daemon again")
            r1.sigterm(30)
            assert daemons(ns) == [], r1.output()  # stop leaves no sync daemon behind
            assert "Traceback" not in r1.output() and "rror" not in r1.output(), r1.output()
        finally:
            for proc in (r1, r2):
                if proc is not None and proc.running():
                    proc.kill9()
