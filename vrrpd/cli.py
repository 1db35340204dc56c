"""The `vrrpd` command line: keepalived-compatible flags (man 8 keepalived).

`parse_args(argv) -> Options` accepts keepalived's daemon flags and stores them for the runtime;
`main(argv) -> int` handles the config-only modes (-t, -d, --convert-to-yaml) itself and hands
everything else to `vrrpd.runtime.daemon.run_daemon(options, config)`.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

import vrrpd._lean  # noqa: F401 - first: before anything imports structlog
from vrrpd import __version__
from vrrpd.config.diag import render_problems
from vrrpd.config.dump import dump_json, dump_yaml
from vrrpd.config.loader import (
    DEFAULT_CONFIG,
    EXIT_CONFIG_ERRORS,
    EXIT_FATAL,
    LoadResult,
    check_config,
)
from vrrpd.config.model import Config
from vrrpd.errors import Severity, VrrpdError
from vrrpd.io.files import FileSource
from vrrpd.io.hostcheck import missing_interfaces, missing_scripts
from vrrpd.runtime.dumps import SIGFUNCS
from vrrpd.runtime.metrics import parse_listen

EXIT_USAGE = 2
EPILOG = """\
exit codes of -t/--config-test (as keepalived):
  0  the configuration would run (warnings are printed but allowed)
  4  it cannot run at all: the file is missing, unreadable, not text, or not valid YAML
  5  it has errors (keepalived itself would still run it, vrrpd refuses to)
a .yaml/.yml file is read as YAML (docs/configuration-yaml.md); anything else as keepalived.conf.
"""


@dataclass(frozen=True, slots=True)
class Options:
    """The parsed command line; daemon flags are kept for `vrrpd.runtime`."""

    config_file: str = DEFAULT_CONFIG
    config_test: bool = False
    dump_conf: bool = False
    convert_to_yaml: bool = False
    config_id: str = ""
    version: bool = False
    dont_fork: bool = False
    log_console: bool = False
    log_detail: bool = False
    log_facility: int | None = None
    log_file: str | None = None
    no_syslog: bool = False
    pid_file: str | None = None
    vrrp_pid_file: str | None = None
    vrrp_only: bool = False
    check_only: bool = False
    dont_release_vrrp: bool = False
    dont_release_ipvs: bool = False
    dont_respawn: bool = False
    log_format: str = "text"
    signum: str | None = None
    metrics_listen: str | None = None
    control_socket: str | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"vrrpd: error: {message} (see vrrpd --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="vrrpd",
        description="A keepalived-compatible VRRP daemon.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-f",
        "--use-file",
        dest="config_file",
        metavar="FILE",
        default=None,
        help=f"configuration file (default {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "-t",
        "--config-test",
        nargs="?",
        const=True,
        default=False,
        metavar="FILE",
        help="check the configuration, print problems to stderr, and exit",
    )
    p.add_argument(
        "-d", "--dump-conf", action="store_true", help="print the resolved configuration as JSON"
    )
    p.add_argument(
        "--convert-to-yaml",
        action="store_true",
        help="print the configuration in vrrpd's YAML form",
    )
    p.add_argument(
        "-i",
        "--config-id",
        metavar="ID",
        help="id for @ID config lines (default: hostname up to the first dot)",
    )
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    p.add_argument("-n", "--dont-fork", action="store_true", help="stay in the foreground")
    p.add_argument("-l", "--log-console", action="store_true", help="log to the console")
    p.add_argument("-D", "--log-detail", action="store_true", help="detailed logging")
    p.add_argument(
        "-S",
        "--log-facility",
        type=int,
        choices=range(8),
        metavar="0-7",
        help="syslog facility LOG_LOCAL[0-7]",
    )
    p.add_argument(
        "-g",
        "--log-file",
        nargs="?",
        const="/tmp/keepalived.log",
        metavar="FILE",
        help="log to a file",
    )
    p.add_argument("-G", "--no-syslog", action="store_true", help="do not log to syslog")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (keepalived's lines, the default) or one JSON object per line",
    )
    p.add_argument("-p", "--pid", dest="pid_file", metavar="FILE", help="pid file")
    p.add_argument(
        "-r", "--vrrp_pid", dest="vrrp_pid_file", metavar="FILE", help="VRRP child pid file"
    )
    p.add_argument(
        "-P",
        "--vrrp",
        dest="vrrp_only",
        action="store_true",
        help="only run the VRRP subsystem (no LVS checkers, no IPVS)",
    )
    p.add_argument(
        "-C",
        "--check",
        dest="check_only",
        action="store_true",
        help="only run the LVS subsystem (checkers and IPVS, no VRRP)",
    )
    p.add_argument(
        "-V", "--dont-release-vrrp", action="store_true", help="keep VIPs and routes when stopping"
    )
    p.add_argument(
        "-I", "--dont-release-ipvs", action="store_true", help="keep IPVS rules when stopping"
    )
    p.add_argument("-R", "--dont-respawn", action="store_true", help="do not respawn")
    p.add_argument(
        "--signum",
        metavar="SIGFUNC",
        help="print the signal number of STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON and exit",
    )
    p.add_argument(
        "--metrics-listen",
        type=_listen,
        metavar="ADDR:PORT",
        help="serve Prometheus metrics on http://ADDR:PORT/metrics (off by default)",
    )
    p.add_argument(
        "--control-socket",
        metavar="PATH",
        help="vrrpctl's socket (default: beside the -p pid file, /run/vrrpd.pid -> /run/vrrpd.ctl)",
    )
    return p


def _listen(text: str) -> str:
    try:
        parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def print_signum(name: str) -> int:
    """keepalived `--signum=SIGFUNC`: the number on stdout, or "Unknown sigfunc NAME" and 1."""
    number = SIGFUNCS.get(name)
    if number is None:
        print(f"Unknown sigfunc {name}", file=sys.stderr)
        return 1
    print(int(number))
    return 0


def parse_args(argv: Sequence[str]) -> Options:
    """Parse keepalived-style flags; raises SystemExit(2) with a message on a bad flag."""
    ns = build_parser().parse_args(list(argv))
    config_file = ns.config_file or DEFAULT_CONFIG
    if isinstance(ns.config_test, str):  # keepalived's --config-test=FILE
        config_file = ns.config_test
    return Options(
        config_file=config_file,
        config_test=bool(ns.config_test),
        dump_conf=ns.dump_conf,
        convert_to_yaml=ns.convert_to_yaml,
        config_id=ns.config_id or default_config_id(),
        version=ns.version,
        dont_fork=ns.dont_fork,
        log_console=ns.log_console,
        log_detail=ns.log_detail,
        log_facility=ns.log_facility,
        log_file=ns.log_file,
        no_syslog=ns.no_syslog,
        pid_file=ns.pid_file,
        vrrp_pid_file=ns.vrrp_pid_file,
        vrrp_only=ns.vrrp_only,
        check_only=ns.check_only,
        dont_release_vrrp=ns.dont_release_vrrp,
        dont_release_ipvs=ns.dont_release_ipvs,
        dont_respawn=ns.dont_respawn,
        log_format=ns.log_format,
        signum=ns.signum,
        metrics_listen=ns.metrics_listen,
        control_socket=ns.control_socket,
    )


def _config_test(result: LoadResult, source: FileSource) -> int:
    """`-t`: the file's problems (already printed), then what only this host can tell."""
    if result.config is None:
        return result.exit_code
    host = missing_interfaces(result.config) + missing_scripts(result.config)
    if host:
        print(render_problems(host, source), file=sys.stderr)
    if any(p.severity is Severity.ERROR for p in host):
        return max(result.exit_code, EXIT_CONFIG_ERRORS)
    return result.exit_code


def default_config_id() -> str:
    """keepalived's default config id: the host name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if options.version:
        print(f"vrrpd v{__version__}")
        return 0
    if options.signum is not None:
        return print_signum(options.signum)
    source = FileSource()
    result = check_config(options.config_file, source, options.config_id)
    if result.problems:
        print(render_problems(result.problems, source), file=sys.stderr)
    if options.config_test:
        return _config_test(result, source)
    if result.config is None or result.errors:
        print(f"vrrpd: {options.config_file} has errors; not starting", file=sys.stderr)
        return result.exit_code
    if options.dump_conf:
        print(dump_json(result.config))
        return 0
    if options.convert_to_yaml:
        print(dump_yaml(result.config), end="")
        return 0
    try:
        daemon = importlib.import_module("vrrpd.runtime.daemon")
        control = importlib.import_module("vrrpd.runtime.control")
    except ModuleNotFoundError as exc:
        if exc.name not in ("vrrpd.runtime.daemon", "vrrpd.runtime"):
            raise
        print("vrrpd: daemon not available yet", file=sys.stderr)
        return 1
    try:  # docs/control.md: refuse to start where another daemon's control socket answers
        control.configure(options.control_socket, options.pid_file)
    except VrrpdError as exc:
        print(f"vrrpd: {exc}; not starting", file=sys.stderr)
        return 1
    config = subsystems(result.config, options)
    code: int = daemon.run_daemon(options, config, lambda new: subsystems(new, options))
    return code


def subsystems(config: Config, options: Options) -> Config:
    """keepalived `-P` (VRRP only) and `-C` (checkers only): the other half of the configuration
    is dropped before the runtime sees it; both flags, or neither, run everything."""
    if options.vrrp_only == options.check_only:
        return config
    g = config.global_defs
    if options.vrrp_only:
        return replace(config, virtual_servers=(), virtual_server_groups=(),
                       global_defs=replace(g, lvs_notify_fifo=None))  # fmt: skip
    return replace(
        config,
        global_defs=replace(g, vrrp_notify_fifo=None),
        instances=(),
        sync_groups=(),
        static_ipaddresses=(),
        static_routes=(),
        static_rules=(),
    )


__all__ = ["EXIT_FATAL", "Options", "main", "parse_args"]
