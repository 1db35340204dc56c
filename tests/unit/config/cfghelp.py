"""Shared helpers for the config tests: in-memory files and keepalived's shipped samples."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from vrrpd.config.loader import LoadResult, check_config
from vrrpd.config.source import MemorySource

SAMPLES = Path("/usr/share/doc/keepalived/samples")


def sample_text(name: str) -> str:
    """A keepalived sample, read at test time (Debian gzips some of them); never copied."""
    path = SAMPLES / name
    if path.exists():
        return path.read_text()
    gz = SAMPLES / f"{name}.gz"
    if gz.exists():
        return gzip.decompress(gz.read_bytes()).decode()
    pytest.skip(f"keepalived sample {name} is not installed")


def load_text(text: str, path: str = "/etc/keepalived/keepalived.conf", **files: str) -> LoadResult:
    """Load `text` as `path`, with extra in-memory files given as name=text (dots as __)."""
    extra = {f"/etc/keepalived/{k.replace('__', '.')}": v for k, v in files.items()}
    return check_config(path, MemorySource({path: text, **extra}), "node1")


def messages(result: LoadResult) -> list[str]:
    return [str(p) for p in result.problems]
