"""`vrrpd` flags: keepalived-compatible parsing, -t exit codes, -d JSON, --convert-to-yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vrrpd.cli import Options, main, parse_args

GOOD = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n" \
       " virtual_ipaddress {\n 192.0.2.1\n }\n priorty 3\n}\n"  # fmt: skip


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(GOOD)
    return path


def test_parse_args_defaults_and_daemon_flags() -> None:
    opts = parse_args(["-n", "-l", "-D", "-p", "/run/p", "-r", "/run/r", "-P", "-g", "-G", "-V",
                       "-i", "high"])  # fmt: skip
    assert opts.config_file == "/etc/keepalived/keepalived.conf"
    assert (opts.dont_fork, opts.log_console, opts.log_detail, opts.vrrp_only) == (True,) * 4
    assert (opts.pid_file, opts.vrrp_pid_file, opts.config_id) == ("/run/p", "/run/r", "high")
    assert opts.log_file == "/tmp/keepalived.log" and opts.no_syslog and opts.dont_release_vrrp
    assert isinstance(opts, Options)


def test_config_test_with_equals_file() -> None:
    opts = parse_args(["--config-test=/tmp/x.conf"])
    assert opts.config_test and opts.config_file == "/tmp/x.conf"


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--frobnicate"]) == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_config_test_ok_prints_warnings_with_caret(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-t", "-f", str(good)]) == 0
    err = capsys.readouterr().err
    assert f"{good}:7:2: warning: unknown keyword 'priorty' in vrrp_instance (ignored)" in err
    assert "\n     priorty 3\n     ^\n    hint: did you mean 'priority'?" in err


def test_config_test_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-t", "-f", str(tmp_path / "missing.conf")]) == 4
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n interface eth0\n}\n")
    assert main(["-t", "-f", str(bad)]) == 5
    binary = tmp_path / "bin.conf"
    binary.write_bytes(b"\x7fELF\x00\x00")
    assert main(["-t", "-f", str(binary)]) == 4
    yml = tmp_path / "x.yaml"
    yml.write_text("a: [\n")
    assert main(["-t", "-f", str(yml)]) == 4
    assert "YAML syntax error" in capsys.readouterr().err


def test_dump_conf_prints_json(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-d", "-f", str(good)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["instances"][0]["vrid"] == 5
    assert data["instances"][0]["vips"][0]["address"] == "192.0.2.1/32"


def test_convert_to_yaml_then_load(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--convert-to-yaml", "-f", str(good)]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["vrrp_instances"]["VI_1"]["virtual_router_id"] == 5
    out = tmp_path / "c.yml"
    out.write_text(text)
    assert main(["-t", "-f", str(out)]) == 0


def test_errors_refuse_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n}\n")
    assert main(["-f", str(bad)]) == 5
    assert "has errors; not starting" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v"]) == 0
    assert capsys.readouterr().out.startswith("vrrpd v")


def test_config_test_reports_a_non_existent_interface_like_keepalived(tmp_path, capsys):
    """keepalived -t exits 5 with "Non-existent interface specified in configuration"."""
    conf = tmp_path / "k.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n  interface vrl-nosuch0\n  virtual_router_id 51\n"
        "  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n"
    )
    assert main(["-t", "-f", str(conf)]) == 5
    err = capsys.readouterr().err
    assert f"{conf}:1:1: error: Non-existent interface vrl-nosuch0 specified" in err


def test_config_test_reports_scripts_that_cannot_run(tmp_path: Path, capsys) -> None:
    """keepalived -t exits 5 with "Disabling track script X since not found/accessible"; vrrpd
    says the same, and warns (exit 0) about a notify script that cannot run."""
    plain = tmp_path / "not-executable.sh"
    plain.write_text("#!/bin/sh\n")
    head = 'vrrp_script {name} {{\n  script "{path} arg"\n}}\n'
    inst = (
        "vrrp_instance VI_1 {{\n  interface lo\n  virtual_router_id 51\n"
        "  notify_master {notify}\n  virtual_ipaddress {{\n    192.0.2.10\n  }}\n"
        "  track_script {{\n    {name}\n  }}\n}}\n"
    )
    conf = tmp_path / "k.conf"
    conf.write_text(head.format(name="chk", path=plain)
                    + inst.format(name="chk", notify=tmp_path / "gone.sh"))  # fmt: skip
    assert main(["-t", "-f", str(conf)]) == 5
    err = capsys.readouterr().err
    assert f"{conf}:1:1: error: Disabling track script chk since not found/accessible" in err
    assert f"{conf}:7:3: warning: script '{tmp_path / 'gone.sh'}' not found/accessible" in err
    conf.write_text(
        head.format(name="ok", path="true") + inst.format(name="ok", notify="/bin/true")
    )
    assert main(["-t", "-f", str(conf)]) == 0  # a bare name is searched in PATH, as when run
    assert "not found/accessible" not in capsys.readouterr().err
    conf.write_text(head.format(name="ok", path="/bin/true")
                    + inst.format(name="ok", notify=tmp_path / "gone.sh"))  # fmt: skip
    assert main(["-t", "-f", str(conf)]) == 0
    assert "warning: script" in capsys.readouterr().err
