"""The LVS examples' files, on the host (no IPVS needed): what examples/lvs-*/ README promises.

`DIRn.yaml` means what `keepalived.conf -i DIRn` does; `vrrpd -t` (and keepalived's own `-t`,
when installed) accepts both; the setup scripts do what the READMEs say in a namespace, undo it
on `stop`, and refuse a missing action with their usage line.
The traffic through the examples is proven in the VM (test_ipvs_traffic.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from vrrplab import netns_available
from vrrplab.netns import ns_exec, run

from vrrpd.cli import main as vrrpd_main
from vrrpd.config.dump import strip_locations
from vrrpd.config.loader import load_config
from vrrpd.io.files import FileSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = [(ex, host) for ex in ("lvs-dr", "lvs-nat") for host in ("dir1", "dir2")]


@pytest.mark.parametrize(("example", "host"), CASES)
def test_yaml_form_loads_the_same_model_as_keepalived_conf(
    example: str, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """(`vrrpd.cli.main` in-process: the code `vrrpd -t` runs, without a second of start-up.)"""
    conf, yaml = EXAMPLES / example / "keepalived.conf", EXAMPLES / example / f"{host}.yaml"
    from_conf, warnings_conf = load_config(str(conf), FileSource(), host)
    from_yaml, warnings_yaml = load_config(str(yaml), FileSource())
    assert (warnings_conf, warnings_yaml) == ([], [])
    assert strip_locations(from_conf) == strip_locations(from_yaml)
    priorities = {i.priority for i in from_conf.instances}
    assert priorities == {150 if host == "dir1" else 100}
    assert [rs.port for vs in from_conf.virtual_servers for rs in vs.real_servers] == [80, 80]
    for argv in (["-t", "-i", host, "-f", str(conf)], ["-t", "-f", str(yaml)]):
        assert (vrrpd_main(argv), capsys.readouterr().err) == (0, ""), f"vrrpd {' '.join(argv)}"


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived missing")
@pytest.mark.parametrize(("example", "host"), CASES)
def test_keepalived_accepts_the_example(example: str, host: str) -> None:
    conf = EXAMPLES / example / "keepalived.conf"
    argv = ["keepalived", "-t", "-i", host, "-f", str(conf)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "script", ["lvs-dr/realserver.sh", "lvs-nat/realserver.sh", "lvs-nat/director.sh"]
)
def test_setup_script_without_an_action_prints_its_usage(script: str) -> None:
    out = subprocess.run(["sh", str(EXAMPLES / script)], capture_output=True, text=True,
                         check=False, timeout=10)  # fmt: skip
    assert (out.returncode, out.stderr.startswith("usage: ")) == (2, True), out.stderr


def sh(ns: str, script: str, *args: str) -> None:
    run(ns_exec(ns, "sh", str(EXAMPLES / script), *args))


def sysctls(ns: str, *keys: str) -> list[str]:
    out: str = run(ns_exec(ns, "sysctl", "-n", *keys))
    return out.split()


needs_netns = pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))


@needs_netns
def test_dr_realserver_holds_the_vip_on_lo_without_answering_arp(netns: str) -> None:
    run(["ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"])
    keys = [
        f"net.ipv4.conf.{s}.{k}" for s in ("all", "eth0") for k in ("arp_ignore", "arp_announce")
    ]
    sh(netns, "lvs-dr/realserver.sh", "start")
    assert "192.0.2.100/32" in run(["ip", "-n", netns, "-4", "-br", "addr", "show", "lo"])
    assert sysctls(netns, *keys) == ["1", "2", "1", "2"]
    sh(netns, "lvs-dr/realserver.sh", "stop")
    assert "192.0.2.100" not in run(["ip", "-n", netns, "-4", "-br", "addr", "show", "lo"])
    assert sysctls(netns, *keys) == ["0", "0", "0", "0"]


@needs_netns
def test_nat_setup_routes_via_the_inside_vip_and_forwards_without_redirects(netns: str) -> None:
    ipn = ["ip", "-n", netns]
    run([*ipn, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"])
    run([*ipn, "addr", "add", "192.0.2.13/24", "dev", "eth0"])
    run([*ipn, "link", "set", "eth0", "up"])
    sh(netns, "lvs-nat/realserver.sh", "start")
    assert run([*ipn, "route", "show", "default"]).split()[:3] == ["default", "via", "192.0.2.1"]
    sh(netns, "lvs-nat/realserver.sh", "stop")
    assert run([*ipn, "route", "show", "default"]) == ""
    keys = ["net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects",
            "net.ipv4.conf.eth0.send_redirects"]  # fmt: skip
    sh(netns, "lvs-nat/director.sh", "start")
    assert sysctls(netns, *keys) == ["1", "0", "0"]
    sh(netns, "lvs-nat/director.sh", "stop")
    assert sysctls(netns, *keys) == ["0", "1", "1"]
