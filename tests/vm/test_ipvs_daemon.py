"""The real vrrpd as an LVS director (in the VM): checkers against real servers drive IPVS.

One bridge, a director (r1) and three web servers (r2, r3, r4: busybox httpd) in their own
namespaces. Two virtual servers share r2 and r3: 192.0.2.100 (quorum 1; r3 inhibit_on_failure)
and 192.0.2.101 (quorum 2, sorry server r4). Killing a web server's listener is the failure the
TCP_CHECK must see; the table is read with ipvsadm in the director's namespace.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from vm_guest import Listener, services, vrrpd_argv
from vrrplab import Lab, wait_until
from vrrplab.netns import run
from vrrplab.procs import RouterProcess

START_S = 120  # the daemon's start-up under software emulation (imports alone take seconds)
STOP_S = 60  # a stop right after a start, late in a batch under software emulation
CHANGE_S = 30  # a verdict: delay_loop 1 s + connect_timeout 1 s, on a busy emulated CPU
BAD_LOG = ("Traceback", "rror", "stopping lvs failed")

CHECK = """        TCP_CHECK {
            connect_timeout 1
            retry 0
        }"""

CONF = """global_defs {{
    router_id director
    script_user root
    lvs_notify_fifo {fifo}
}}
track_file rs_switch {{
    file {switch}
    weight 0
}}
virtual_server 192.0.2.100 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.12 80 {{
{check}
    }}
    real_server 192.0.2.13 80 {{
        inhibit_on_failure
{check}
    }}
}}
virtual_server 192.0.2.101 80 {{
    delay_loop 1
    lvs_sched wlc
    lvs_method NAT
    protocol TCP
    quorum 2
    quorum_up "/bin/sh -c 'echo up >> {quorum}'"
    quorum_down "/bin/sh -c 'echo down >> {quorum}'"
    sorry_server 192.0.2.14 80
    real_server 192.0.2.12 80 {{
{check}
    }}
    real_server 192.0.2.13 80 {{
{check}
    }}
}}
virtual_server 192.0.2.103 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.13 80 {{
        FILE_CHECK {{
            track_file rs_switch
        }}
    }}
}}
virtual_server 192.0.2.102 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    ha_suspend
    real_server 192.0.2.12 80 {{
{check}
    }}
}}
"""

VS1, VS2, VS3 = "TCP 192.0.2.100:80 rr", "TCP 192.0.2.101:80 wlc", "TCP 192.0.2.102:80 rr"
VS4 = "TCP 192.0.2.103:80 rr"  # r3 behind a FILE_CHECK: up while the track file holds 0
RS2, RS3, SORRY = "192.0.2.12:80 Masq", "192.0.2.13:80 Masq", "192.0.2.14:80 Masq"
# VS3 has ha_suspend and its address is not on the director: its checker is paused, so its
# real server stays as it was whatever happens to it.
HEALTHY = {VS1: [f"{RS2} 1", f"{RS3} 1"], VS2: [f"{RS2} 1", f"{RS3} 1"], VS3: [f"{RS2} 1"],
           VS4: [f"{RS3} 1"]}  # fmt: skip
SUSPENDED = "healthchecker for service [192.0.2.12]:tcp:80 for VS [192.0.2.102]:tcp:80"


@pytest.fixture
def director(tmp_path: Path) -> Iterator[tuple[Lab, dict[str, Listener]]]:
    with Lab(routers=4, tag="lvs", workdir=tmp_path) as lab:
        web = {n.name: Listener(n.ns, n.name, tmp_path / "www") for n in lab.routers[1:]}
        for listener in web.values():
            listener.start()
        try:
            yield lab, web
        finally:
            for listener in web.values():
                listener.stop()


def _daemon(lab: Lab, tmp_path: Path, *flags: str) -> RouterProcess:
    switch = tmp_path / "switch"
    if not switch.exists():
        switch.write_text("0\n")
    conf = CONF.format(check=CHECK, quorum=tmp_path / "quorum.log", fifo=tmp_path / "lvs.fifo",
                       switch=switch)  # fmt: skip
    proc = RouterProcess(lab.routers[0], "vrrpd", conf, tmp_path, argv=vrrpd_argv(*flags))
    proc.start()
    proc.wait_started(START_S)
    return proc


def _table_is(
    ns: str,
    want: dict[str, list[str]],
    timeout: float,
    what: str,
    proc: RouterProcess | None = None,
) -> None:
    def matches() -> bool:
        return services(ns) == {k: sorted(v) for k, v in want.items()}

    try:
        wait_until(matches, timeout, what)
    except Exception as exc:
        log = proc.output()[-6000:] if proc is not None else ""
        raise AssertionError(f"{exc}\nipvsadm: {services(ns)}\nwanted: {want}\n{log}") from exc


def _fifo_lines_in_order(fifo: Path) -> None:
    """lvs_notify_fifo got the checkers' lines (keepalived's format), per virtual server in
    the order of the failures above; the daemon holds the FIFO open, so they wait for us."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        lines = os.read(fd, 65536).decode().splitlines()
    finally:
        os.close(fd)
    vs2 = [line for line in lines if "[192.0.2.101]:tcp:80" in line]
    assert vs2[:2] == [
        "RS [192.0.2.12]:tcp:80 [192.0.2.101]:tcp:80 DOWN",
        "VS [192.0.2.101]:tcp:80 DOWN",  # quorum 2 lost with r2
    ], lines
    assert vs2[-1] == "VS [192.0.2.101]:tcp:80 UP", lines
    vs1_down = [line for line in lines if line.endswith("[192.0.2.100]:tcp:80 DOWN")]
    assert vs1_down == [
        "RS [192.0.2.12]:tcp:80 [192.0.2.100]:tcp:80 DOWN",
        "RS [192.0.2.13]:tcp:80 [192.0.2.100]:tcp:80 DOWN",
        "VS [192.0.2.100]:tcp:80 DOWN",  # quorum 1: r3 inhibited at weight 0 leaves 0
    ], lines
    assert lines[-1].endswith(" UP"), lines
    assert not [line for line in lines if line.startswith(("INSTANCE", "GROUP"))], lines


def test_failure_recovery_quorum_and_stop(director, tmp_path: Path) -> None:
    lab, web = director
    ns = lab.routers[0].ns
    proc = _daemon(lab, tmp_path, "-C")
    try:
        _table_is(ns, HEALTHY, START_S, "the table after start")
        (tmp_path / "switch").write_text("1\n")  # FILE_CHECK (inotify): r3 out of VS4 only
        _table_is(ns, {**HEALTHY, VS4: []}, CHANGE_S, "FILE_CHECK down")
        (tmp_path / "switch").write_text("0\n")
        _table_is(ns, HEALTHY, CHANGE_S, "FILE_CHECK up again")
        web["r2"].stop()  # r2 fails: removed; 192.0.2.101 drops below its quorum of 2
        _table_is(ns, {**HEALTHY, VS1: [f"{RS3} 1"], VS2: [f"{SORRY} 1"]}, CHANGE_S, "r2 out")
        web["r3"].stop()  # r3 fails too: inhibit_on_failure keeps it at weight 0
        _table_is(ns, {**HEALTHY, VS1: [f"{RS3} 0"], VS2: [f"{SORRY} 1"]}, CHANGE_S, "r3 at 0")
        web["r2"].start()
        web["r3"].start()
        _table_is(ns, HEALTHY, CHANGE_S, "both back, quorum regained, sorry server gone")
        log = proc.output()
        for line in (
            "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
            "Disabling service [192.0.2.13]:tcp:80 of VS [192.0.2.100]:tcp:80",
            "Lost quorum 2-0=2 > 1 for VS [192.0.2.101]:tcp:80",
            "Adding sorry server [192.0.2.14]:tcp:80 to VS [192.0.2.101]:tcp:80",
            "Gained quorum 2+0=2 <= 2 for VS [192.0.2.101]:tcp:80",
            "Removing sorry server [192.0.2.14]:tcp:80 from VS [192.0.2.101]:tcp:80",
        ):
            assert line in log, log
        quorum = tmp_path / "quorum.log"
        wait_until(lambda: quorum.exists() and quorum.read_text() == "down\nup\n", 10, "notify")
        _fifo_lines_in_order(tmp_path / "lvs.fifo")
        # SIGHUP with 192.0.2.13 swapped for 192.0.2.14 in the first virtual server only.
        mark = proc.mark()
        proc.conf.write_text(
            proc.conf.read_text().replace(
                "192.0.2.13 80 {\n        inhibit", "192.0.2.14 80 {\n        inhibit"
            )
        )
        os.kill(proc.pid, signal.SIGHUP)
        reloaded = {**HEALTHY, VS1: [f"{RS2} 1", f"{SORRY} 1"]}
        _table_is(ns, reloaded, CHANGE_S, "the table after the reload", proc)
        wait_until(lambda: "Reload complete" in proc.output(mark), CHANGE_S, "the reload")
        applied = [line for line in proc.output(mark).splitlines() if "IPVS applying" in line]
        assert len(applied) == 1, applied  # one apply, with only the differences:
        assert applied[0].endswith(
            "IPVS applying: added ['[192.0.2.14]:tcp:80 of [192.0.2.100]:tcp:80'], edited [], "
            "removed ['[192.0.2.13]:tcp:80 of [192.0.2.100]:tcp:80']"
        ), applied
        proc.sigterm(STOP_S)
        assert services(ns) == {}, proc.output()  # stop releases what the daemon programmed
        assert not any(bad in proc.output() for bad in BAD_LOG), proc.output()
    finally:
        if proc.running():
            proc.kill9()


def test_dont_release_ipvs_keeps_the_table_and_a_restart_adopts_it(director, tmp_path) -> None:
    lab, _ = director
    ns = lab.routers[0].ns
    proc = _daemon(lab, tmp_path, "-I")
    try:
        _table_is(ns, HEALTHY, START_S, "the table after start")
        # ha_suspend: paused while 192.0.2.102 is absent, resumed once it is configured.
        wait_until(lambda: f"Deactivating {SUSPENDED}" in proc.output(), CHANGE_S, "suspend")
        mark = proc.mark()
        run(["ip", "-n", ns, "addr", "add", "192.0.2.102/32", "dev", "eth0"])
        wait_until(lambda: f"Activating {SUSPENDED}" in proc.output(mark), CHANGE_S, "resume")
        proc.sigterm(STOP_S)
        assert services(ns) == {k: sorted(v) for k, v in HEALTHY.items()}  # -I kept it
        assert "keeping the virtual servers (--dont-release-ipvs)" in proc.output(), proc.output()
        mark = proc.mark()
        proc = _daemon(lab, tmp_path)  # the same config, without -I this time
        wait_until(lambda: "Activating healthchecker" in proc.output(mark), START_S, "checkers")
        assert services(ns) == {k: sorted(v) for k, v in HEALTHY.items()}
        assert "IPVS applying: added" not in proc.output(mark)  # adopted, nothing re-added
        proc.sigterm(STOP_S)
        assert proc.proc is not None and proc.proc.returncode == 0, proc.output(mark)  # not -9
        assert services(ns) == {}, proc.output(mark)
        assert not any(bad in proc.output() for bad in BAD_LOG), proc.output()
    finally:
        if proc.running():
            proc.kill9()
