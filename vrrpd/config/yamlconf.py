"""YAML front-end (placeholder until the YAML schema lands)."""

from __future__ import annotations

from vrrpd.config.diag import Problems
from vrrpd.config.model import Config
from vrrpd.config.source import Source


def parse_yaml_file(path: str, source: Source, problems: Problems) -> Config | None:
    raise NotImplementedError
