"""keepalived script security (`enable_script_security`) on real files with real modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from vrrpd.io import security
from vrrpd.io.security import ScriptSecurity, check_script, inspect_script, script_identity

NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other users needs root")


@pytest.fixture
def safe_dir(tmp_path: Path) -> Path:
    """A root-owned 0755 directory under pytest's 0700 root-owned tmp tree."""
    d = tmp_path / "scripts"
    d.mkdir()
    d.chmod(0o755)
    return d


def _script(d: Path, name: str = "check.sh", mode: int = 0o755) -> Path:
    p = d / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(mode)
    return p


@needs_root
def test_root_owned_script_in_safe_path_runs(safe_dir: Path) -> None:
    script = _script(safe_dir)
    result = inspect_script((str(script), "arg"), 0, 0, secure=True)
    assert result.refusal is None
    assert result.warnings == ()
    assert not result.insecure


@needs_root
def test_world_writable_script_refused_with_security(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o757)
    reason = inspect_script((str(script),), 0, 0, secure=True).refusal
    assert reason == f"Unsafe permissions found for script '{script}' - disabling."


@needs_root
def test_world_writable_script_runs_with_warning_without_security(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o757)
    result = inspect_script((str(script),), 0, 0, secure=False)
    assert result.refusal is None
    assert result.warnings == (f"Unsafe permissions found for script '{script}'.",)
    assert result.insecure


@needs_root
def test_group_writable_parent_directory_refused(safe_dir: Path) -> None:
    sub = safe_dir / "sub"
    sub.mkdir()
    os.chown(sub, 0, NOBODY)
    sub.chmod(0o775)  # writable by a non-root group
    script = _script(sub)
    reason = inspect_script((str(script),), 0, 0, secure=True).refusal
    assert reason == f"Unsafe permissions found for script '{script}' - disabling."


@needs_root
def test_group_writable_by_root_group_is_safe(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o775)  # group root may write: keepalived accepts it
    assert inspect_script((str(script),), 0, 0, secure=True).refusal is None


@needs_root
def test_script_owned_by_other_user_refused_for_root(safe_dir: Path) -> None:
    script = _script(safe_dir)
    os.chown(script, NOBODY, NOBODY)
    reason = inspect_script((str(script),), 0, 0, secure=True).refusal
    assert reason == f"Unsafe permissions found for script '{script}' - disabling."


@needs_root
def test_non_root_user_skips_ownership_check(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o757)
    # Run as nobody:nobody the unsafe path is the user's own business, as in keepalived.
    assert inspect_script((str(script),), NOBODY, NOBODY, secure=True).refusal is None


@needs_root
def test_sticky_world_writable_directory_is_safe(safe_dir: Path) -> None:
    sticky = safe_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp
    script = _script(sticky)
    assert inspect_script((str(script),), 0, 0, secure=True).refusal is None


@needs_root
def test_symlink_to_unsafe_target_refused(safe_dir: Path) -> None:
    unsafe = safe_dir / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    target = _script(unsafe)
    link = safe_dir / "link.sh"
    link.symlink_to(target)
    reason = inspect_script((str(link),), 0, 0, secure=True).refusal
    assert reason == f"Unsafe permissions found for script '{link}' - disabling."


def test_missing_script_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.sh"
    reason = inspect_script((str(path),), 0, 0, secure=False).refusal
    assert reason == f"check_script_secure could not find script '{path}' - disabling"


def test_missing_bare_name_refused() -> None:
    reason = inspect_script(("vrrpd-no-such-script",), 0, 0, False, search_path="/nonexistent")
    assert reason.refusal == (
        "check_script_secure could not find script 'vrrpd-no-such-script' - disabling"
    )


@needs_root
def test_not_executable_refused(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o644)
    reason = inspect_script((str(script),), 0, 0, secure=True).refusal
    assert reason == f"WARNING - script '{script}' is not executable for uid:gid 0:0 - disabling."


@needs_root
def test_executable_only_for_owner_refused_for_other_user(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o744)
    reason = inspect_script((str(script),), NOBODY, NOBODY, secure=True).refusal
    expected = f"WARNING - script '{script}' is not executable for uid:gid {NOBODY}:{NOBODY}"
    assert reason == expected + " - disabling."


@needs_root
def test_directory_as_script_is_wrong_type(safe_dir: Path) -> None:
    reason = inspect_script((str(safe_dir),), 0, 0, secure=True).refusal
    assert reason == f"Wrong file type found in script path '{safe_dir}'."


@needs_root
def test_bare_name_resolved_by_path_search_with_warning(safe_dir: Path) -> None:
    script = _script(safe_dir, "vrrpd-test-chk")
    result = inspect_script(
        ("vrrpd-test-chk", "x"), 0, 0, True, search_path=f"/nonexistent:{safe_dir}"
    )
    assert result.path == str(script)
    assert result.refusal is None
    assert result.warnings == (
        f"WARNING - script `vrrpd-test-chk` resolved by path search to `{script}`."
        " Please specify full path.",
    )


def test_file_test_form_is_not_checked() -> None:
    assert inspect_script(("</dev/tcp/192.0.2.1/80",), 0, 0, True).refusal is None


def test_empty_command_refused() -> None:
    assert inspect_script((), 0, 0, True).refusal == "empty script command - disabling"


@needs_root
def test_warnings_logged_once_and_violation_once(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o757)
    sec = ScriptSecurity()
    with capture_logs() as logs:
        for _ in range(3):
            assert sec.check((str(script),), 0, 0, secure=False) is None
    lines = [e["event"] for e in logs]
    assert lines == [
        f"Unsafe permissions found for script '{script}'.",
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
        " There are insecure scripts.",
    ]


@needs_root
def test_refusal_logged_once_per_reason(safe_dir: Path) -> None:
    script = _script(safe_dir, mode=0o757)
    sec = ScriptSecurity()
    with capture_logs() as logs:
        reasons = {sec.check((str(script),), 0, 0, secure=True) for _ in range(3)}
    assert reasons == {f"Unsafe permissions found for script '{script}' - disabling."}
    lines = [e["event"] for e in logs]
    assert lines == [f"Unsafe permissions found for script '{script}' - disabling."]


def test_module_level_check_script_uses_process_wide_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "_default", ScriptSecurity())
    path = str(tmp_path / "absent")
    assert check_script((path,), 0, 0, True) == (
        f"check_script_secure could not find script '{path}' - disabling"
    )
    assert not security._default.violation_logged  # secure: no SECURITY VIOLATION line


def test_script_identity() -> None:
    assert script_identity("nobody", None) == (NOBODY, NOBODY)
    assert script_identity("root", "nogroup") == (0, NOBODY)
    assert script_identity("vrrpd-no-such-user", None) == (
        "Script user 'vrrpd-no-such-user' does not exist"
    )
    assert script_identity("root", "vrrpd-no-such-group") == (
        "Script group 'vrrpd-no-such-group' does not exist"
    )
