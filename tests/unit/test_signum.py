"""`vrrpd --signum=NAME` prints what Debian's keepalived 2.2.7 prints (`keepalived --signum=`),
and `--metrics-listen` takes ADDR:PORT or refuses with a usage error."""

import shutil
import subprocess

import pytest

from vrrpd.cli import main, parse_args
from vrrpd.runtime.metrics import parse_listen

# keepalived 2.2.7 on Debian 12 (x86_64 glibc: SIGRTMIN 34, SIGRTMAX 64).
KEEPALIVED_227 = {"STOP": 15, "RELOAD": 1, "DATA": 10, "STATS": 12, "STATS_CLEAR": 63, "JSON": 36}


@pytest.mark.parametrize(("name", "number"), sorted(KEEPALIVED_227.items()))
def test_signum_prints_keepalived_numbers(name, number, capsys):
    assert main([f"--signum={name}"]) == 0
    out = capsys.readouterr()
    assert out.out == f"{number}\n"
    assert out.err == ""


@pytest.mark.parametrize("name", ["TDATA", "stop", "FOO"])
def test_unknown_sigfunc_is_an_error_as_in_keepalived(name, capsys):
    assert main(["--signum", name]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == f"Unknown sigfunc {name}\n"


def test_signum_needs_no_config_file(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "missing.conf"), "--signum=STOP"]) == 0
    assert capsys.readouterr().out == "15\n"


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived not installed")
@pytest.mark.parametrize("name", [*KEEPALIVED_227, "TDATA"])
def test_same_output_as_the_installed_keepalived(name, capsys):
    argv = ["keepalived", f"--signum={name}"]
    ref = subprocess.run(argv, capture_output=True, text=True, check=False)
    code = main([f"--signum={name}"])
    out = capsys.readouterr()
    assert (code, out.out, out.err) == (ref.returncode, ref.stdout, ref.stderr)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9650", ("127.0.0.1", 9650)),
        (":9165", ("0.0.0.0", 9165)),
        ("[2001:db8::1]:9650", ("2001:db8::1", 9650)),
        ("2001:db8::1:9650", ("2001:db8::1", 9650)),
    ],
)
def test_metrics_listen_accepts_addr_port(text, want):
    assert parse_listen(text) == want
    assert parse_args(["--metrics-listen", text]).metrics_listen == text


@pytest.mark.parametrize("text", ["9650", "host:9650", "127.0.0.1:0", "127.0.0.1:99999", ":x"])
def test_metrics_listen_rejects_bad_values_with_a_usage_error(text, capsys):
    assert main(["--metrics-listen", text]) == 2
    err = capsys.readouterr().err
    assert "--metrics-listen" in err
    assert "Traceback" not in err


def test_metrics_are_off_by_default():
    assert parse_args([]).metrics_listen is None
