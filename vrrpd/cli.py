"""The `vrrpd` command line (keepalived-compatible flags).

Placeholder until the config and runtime layers land: it only knows `--version`.
"""

from __future__ import annotations

import sys

from vrrpd import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-v", "--version"):
        print(f"vrrpd v{__version__}")
        return 0
    print("vrrpd: not runnable yet", file=sys.stderr)
    return 1
