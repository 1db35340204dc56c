"""Script security: keepalived `enable_script_security` and `script_user` (keepalived 2.2.7).

What keepalived checks before it runs a track or notify script (`man keepalived.conf`,
global_defs `enable_script_security`; keepalived.md section 1.2 and pain point 6), with its log
texts verbatim because ops tooling greps them:

- A bare name is looked up in PATH for the script's user and warned about:
  ``WARNING - script `NAME` resolved by path search to `PATH`. Please specify full path.``
- A path that cannot be reached disables the script:
  `check_script_secure could not find script 'PATH' - disabling`.
- A script that runs with root's uid or gid is unsafe when the file or any directory above it is
  owned by a non-root user, or is writable by a group other than root or by everyone (a directory
  with the sticky bit, like /tmp, may be world-writable). keepalived logs
  `Unsafe permissions found for script 'PATH' - disabling.` and refuses it with
  `enable_script_security`; without it the line lacks " - disabling" and the script still runs.
- The file must be executable for the script's uid:gid:
  `WARNING - script 'PATH' is not executable for uid:gid U:G - disabling.`
- Scripts in use without `enable_script_security` log, once:
  `SECURITY VIOLATION - scripts are being executed but script_security not enabled.` with
  ` There are insecure scripts.` appended when one of them was found unsafe.

`check_script(argv, uid, gid, secure)` is what a script runner calls before every spawn: it logs
each distinct warning once, and returns None (run it) or keepalived's reason text (do not run;
already logged once, the caller may add its own context line and count it).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("vrrpd.security")

DEFAULT_SCRIPT_USER = "keepalived_script"  # keepalived's default when that user exists
# keepalived searches PATH, or this when PATH is unset, for bare script names.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VIOLATION = "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
INSECURE_SUFFIX = " There are insecure scripts."


@dataclass(frozen=True, slots=True)
class ScriptCheck:
    """The outcome of inspecting one script for one uid:gid.

    `path` is the file that would be executed (after PATH search), `refusal` keepalived's reason
    not to run it (None: run it), `warnings` lines to log even when it runs, `insecure` whether
    the path had unsafe permissions (counted for the SECURITY VIOLATION line).
    """

    path: str | None
    refusal: str | None
    warnings: tuple[str, ...] = ()
    insecure: bool = False


def inspect_script(
    argv: tuple[str, ...], uid: int, gid: int, secure: bool, search_path: str | None = None
) -> ScriptCheck:
    """keepalived `check_script_secure` for `argv[0]` run as `uid:gid` (pure apart from stat)."""
    if not argv or not argv[0]:
        return ScriptCheck(None, "empty script command - disabling")
    name = argv[0]
    if name.startswith("<") and name[1:].lstrip(" \t").startswith("/"):
        return ScriptCheck(name, None)  # keepalived's `</path` file test: run by the shell
    warnings: list[str] = []
    if "/" in name:
        path = name
    else:
        found = _search_path(name, uid, gid, search_path)
        if found is None:
            return ScriptCheck(
                None, f"check_script_secure could not find script '{name}' - disabling"
            )
        path = found
        warnings.append(
            f"WARNING - script `{name}` resolved by path search to `{path}`."
            " Please specify full path."
        )
    root_privileged = uid == 0 or gid == 0
    finals = (os.path.abspath(path), os.path.realpath(path))
    for part in _path_prefixes(path) + _real_prefixes(path):
        try:
            st = os.stat(part)
        except OSError as exc:
            return ScriptCheck(path, _not_found(path, exc), tuple(warnings))
        last = part in finals
        if (not last and not stat.S_ISDIR(st.st_mode)) or (last and not stat.S_ISREG(st.st_mode)):
            return ScriptCheck(
                path, f"Wrong file type found in script path '{path}'.", tuple(warnings)
            )
        if root_privileged and _unsafe(st):
            if secure:
                reason = f"Unsafe permissions found for script '{path}' - disabling."
                return ScriptCheck(path, reason, tuple(warnings), insecure=True)
            warnings.append(f"Unsafe permissions found for script '{path}'.")
            return _executable_check(path, uid, gid, warnings, insecure=True)
    return _executable_check(path, uid, gid, warnings, insecure=False)


def _executable_check(
    path: str, uid: int, gid: int, warnings: list[str], *, insecure: bool
) -> ScriptCheck:
    try:
        st = os.stat(path)
    except OSError as exc:
        return ScriptCheck(path, _not_found(path, exc), tuple(warnings), insecure)
    if not _executable_for(st, uid, gid):
        reason = f"WARNING - script '{path}' is not executable for uid:gid {uid}:{gid} - disabling."
        return ScriptCheck(path, reason, tuple(warnings), insecure)
    return ScriptCheck(path, None, tuple(warnings), insecure)


def _not_found(path: str, exc: OSError) -> str:
    """keepalived's two texts: a path that does not resolve, or any other stat error."""
    if exc.errno in _NOT_FOUND_ERRNOS:
        return f"check_script_secure could not find script '{path}' - disabling"
    return f"check_script_secure('{path}') returned errno {exc.errno} - {exc.strerror} - disabling"


_NOT_FOUND_ERRNOS = frozenset({2, 13, 20, 40})  # ENOENT, EACCES, ENOTDIR, ELOOP


def _unsafe(st: os.stat_result) -> bool:
    """Owned by a non-root user, or writable by a non-root group or by everyone; a directory
    with the sticky bit (/tmp) may be writable, since others cannot replace our entries."""
    if st.st_uid != 0:
        return True
    if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return False
    group_writable = st.st_gid != 0 and bool(st.st_mode & stat.S_IWGRP)
    return group_writable or bool(st.st_mode & stat.S_IWOTH)


def _executable_for(st: os.stat_result, uid: int, gid: int) -> bool:
    """execve(2) permission for uid:gid by the mode bits (root needs any execute bit)."""
    if uid == 0:
        return bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _path_prefixes(path: str) -> list[str]:
    """`/`, `/a`, `/a/b`, ... `/a/b/script`: every element keepalived stats, root first."""
    absolute = os.path.abspath(path)
    parts = [p for p in absolute.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _real_prefixes(path: str) -> list[str]:
    """The same for the symlink-resolved path, so a link cannot hide an unsafe target."""
    real = os.path.realpath(path)
    return [] if real == os.path.abspath(path) else _path_prefixes(real)


def _search_path(name: str, uid: int, gid: int, search_path: str | None) -> str | None:
    """PATH lookup as execvp does it, for the script's user (not the daemon's)."""
    dirs = search_path if search_path is not None else os.environ.get("PATH", DEFAULT_PATH)
    for d in dirs.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _executable_for(st, uid, gid):
            return candidate
    return None


@dataclass
class ScriptSecurity:
    """Logs each distinct security line once and remembers whether an unsafe script was seen."""

    warned: set[str] = field(default_factory=set)
    insecure_seen: bool = False
    violation_logged: bool = False

    def check(self, argv: tuple[str, ...], uid: int, gid: int, secure: bool) -> str | None:
        """None if the script may run, else keepalived's reason (logged here, once)."""
        result = inspect_script(argv, uid, gid, secure)
        self.insecure_seen = self.insecure_seen or result.insecure
        for line in result.warnings:
            self._once(line, warning=True)
        if result.refusal is not None:
            self._once(result.refusal, warning=True)
        if not secure:
            self.warn_not_secure()
        return result.refusal

    def warn_not_secure(self) -> None:
        """keepalived's SECURITY VIOLATION line, once, when scripts run without
        `enable_script_security` (with the insecure suffix when one was found)."""
        if self.violation_logged:
            return
        self.violation_logged = True
        log.warning(VIOLATION + (INSECURE_SUFFIX if self.insecure_seen else ""))

    def _once(self, line: str, *, warning: bool) -> None:
        if line in self.warned:
            return
        self.warned.add(line)
        if warning:
            log.warning(line)
        else:
            log.info(line)


_default = ScriptSecurity()


def check_script(argv: tuple[str, ...], uid: int, gid: int, secure: bool) -> str | None:
    """Whether `argv` may be executed as `uid:gid` (see the module docstring).

    Returns None to run it, else keepalived's reason text, already logged once by this module.
    """
    return _default.check(argv, uid, gid, secure)


def warn_not_secure_once() -> None:
    """Log `SECURITY VIOLATION - ...` once per daemon (the process-wide helper)."""
    _default.warn_not_secure()


def script_identity(user: str | None, group: str | None) -> tuple[int, int] | str:
    """uid:gid for a script's `user [group]` (or `script_user`): keepalived's default is
    `keepalived_script` when that user exists, else the daemon's own uid:gid. A name that does
    not resolve returns keepalived's message instead."""
    if user is None:
        try:
            entry = pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            return os.getuid(), os.getgid()
        return entry.pw_uid, entry.pw_gid
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return f"Script user '{user}' does not exist"
    if group is None:
        return pw.pw_uid, pw.pw_gid
    try:
        return pw.pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        return f"Script group '{group}' does not exist"
