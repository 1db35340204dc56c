"""One broken config per problem kind, each with its exact messages, locations and exit code.

The expected output sits next to each file as NAME.expected: the `-t` exit code, then one
problem per line with paths relative to the corpus directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vrrpd.config.loader import check_config, load_config
from vrrpd.errors import ConfigError
from vrrpd.io.files import FileSource

CORPUS = Path(__file__).parents[2] / "data" / "config" / "broken"
CASES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".conf", ".yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_broken_config_reports_exact_problems(path: Path) -> None:
    result = check_config(str(path), FileSource(), "node1")
    got = [f"exit {result.exit_code}"]
    got += [str(p).replace(f"{CORPUS}/", "") for p in result.problems]
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert got == expected


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_errors_never_half_load(path: Path) -> None:
    result = check_config(str(path), FileSource(), "node1")
    if result.errors:
        with pytest.raises(ConfigError) as info:
            load_config(str(path), FileSource(), "node1")
        assert info.value.problems == result.problems
    else:
        _config, warnings = load_config(str(path), FileSource(), "node1")
        assert warnings == list(result.problems)


def test_corpus_covers_many_kinds() -> None:
    assert len(CASES) >= 30
