"""What `vrrpd -t` checks on this host beyond the file itself, as keepalived's `-t` does.

- an instance's interface that does not exist: keepalived's "Non-existent interface specified in
  configuration", an error (exit 5); the daemon itself runs such an instance in FAULT;
- a `vrrp_script` whose program is not found or not executable: keepalived's "Disabling track
  script NAME since not found/accessible", an error (exit 5);
- any other script (notify, FIFO reader, LVS notify/quorum/MISC_CHECK) that is not found or not
  executable: a warning, where keepalived's `-t` says nothing and the failure only shows when the
  script is first run.

Each problem carries the location of the block or keyword that names the program.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
from collections.abc import Iterator
from typing import Any

from vrrpd.config.model import Command, Config
from vrrpd.errors import Problem, Severity


def missing_interfaces(config: Config) -> list[Problem]:
    """keepalived `-t`: a missing interface makes it exit 5."""
    problems = []
    for inst in config.instances:
        if not inst.interface:
            continue
        try:
            socket.if_nametoindex(inst.interface)
        except OSError:
            msg = f"Non-existent interface {inst.interface} specified in configuration"
            problems.append(Problem(inst.location, msg, hint="the instance would start in FAULT"))
    return problems


def missing_scripts(config: Config) -> list[Problem]:
    """Track scripts (errors) and every other configured command (warnings) that cannot run."""
    problems = []
    for script in config.scripts:
        if script.argv and not _runnable(script.argv[0]):
            problems.append(Problem(
                script.location,
                f"Disabling track script {script.name} since not found/accessible",
                hint=f"{script.argv[0]}: no executable file by that name",
            ))  # fmt: skip
    seen: set[tuple[str, object]] = set()
    for cmd in _commands(config):
        key = (cmd.argv[0], cmd.location)
        if key in seen or _runnable(cmd.argv[0]):
            continue
        seen.add(key)
        problems.append(Problem(
            cmd.location,
            f"script '{cmd.argv[0]}' not found/accessible",
            Severity.WARNING,
            "it will fail each time it is run",
        ))  # fmt: skip
    return problems


def _runnable(program: str) -> bool:
    """A path, or a bare name searched in PATH (as the script runner does)."""
    return shutil.which(program) is not None


def _commands(value: Any) -> Iterator[Command]:
    """Every `Command` anywhere in the model (notify, FIFO, LVS scripts), in file order."""
    if isinstance(value, Command):
        if value.argv:
            yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _commands(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _commands(item)
