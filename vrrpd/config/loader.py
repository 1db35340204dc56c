"""Loading a configuration file: pick the front-end by suffix, collect every problem.

`check_config` never raises (it is what `vrrpd -t` uses); `load_config` raises `ConfigError`
when there is any error, so a config with errors never half-loads. Files the configuration
names for later use are looked for here, through the same `Source` (the `SSL` block's).
"""

from __future__ import annotations

from dataclasses import dataclass

from vrrpd.config.diag import Problems
from vrrpd.config.keepalived import parse_keepalived
from vrrpd.config.lvsssl import check_ssl_files
from vrrpd.config.model import Config
from vrrpd.config.source import Source
from vrrpd.config.yamlconf import parse_yaml_file
from vrrpd.errors import ConfigError, Problem, Severity

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_OK = 0
EXIT_FATAL = 4  # keepalived: cannot run (file missing or fatal error)
EXIT_CONFIG_ERRORS = 5  # keepalived: errors, but keepalived itself would still run


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The outcome of reading a config: the model (None if unusable) and every problem."""

    config: Config | None
    problems: tuple[Problem, ...]
    fatal: bool

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def exit_code(self) -> int:
        """`keepalived -t` codes: 0 runs, 4 cannot run at all, 5 has errors."""
        if self.fatal or self.config is None:
            return EXIT_FATAL
        return EXIT_CONFIG_ERRORS if self.errors else EXIT_OK


def is_yaml_path(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def check_config(path: str, source: Source, config_id: str = "") -> LoadResult:
    """Parse `path` with the front-end its suffix selects; never raises for any input file."""
    problems = Problems()
    if is_yaml_path(path):
        config = parse_yaml_file(path, source, problems)
    else:
        config = parse_keepalived(path, source, config_id, problems)
    if config is not None:
        check_ssl_files(config.virtual_servers, source.exists, problems)
    return LoadResult(config, tuple(problems.items), problems.fatal)


def load_config(path: str, source: Source, config_id: str = "") -> tuple[Config, list[Problem]]:
    """The config and its warnings; raises `ConfigError` with every problem if any is an error."""
    result = check_config(path, source, config_id)
    if result.config is None or result.errors:
        raise ConfigError(result.problems)
    return result.config, list(result.warnings)
