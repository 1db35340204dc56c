#!/bin/sh
# keepalived / vrrpd generic `notify` hook for a MariaDB / MySQL primary behind the VIP.
#
#   notify_mysql.sh OPTION_FILE LOG TYPE NAME STATE PRIORITY
#
# OPTION_FILE and LOG come from the config; keepalived appends TYPE (INSTANCE or GROUP), NAME,
# STATE (MASTER, BACKUP, FAULT, STOP, DELETED) and the effective PRIORITY.
#   MASTER             SET GLOBAL read_only=0: the host with the VIP takes the writes.
#   BACKUP FAULT STOP  SET GLOBAL read_only=1: no write lands on a host without the VIP.
# One line per call in LOG: `<time> TYPE NAME STATE PRIORITY read_only=N ok`, or
# `... read_only=N failed (exit N): <error>` when the server cannot be reached (a FAULT usually
# means it is down). Hooks are serialised with flock, so two transitions in quick succession do
# not interleave their statements.
if [ $# -ne 6 ]; then
    echo "usage: $0 OPTION_FILE LOG TYPE NAME STATE PRIORITY (got: $*)" >&2
    exit 2
fi
cnf=$1 log=$2
shift 2
case $3 in
    MASTER) ro=0 ;;
    BACKUP | FAULT | STOP) ro=1 ;;
    *) ro= ;;
esac
mkdir -p "$(dirname "$log")"
exec 9>>"$log.lock"
flock -w 10 9
line="$(date -Iseconds) $1 $2 $3 $4"
if [ -n "$ro" ]; then
    client=$(command -v mariadb || command -v mysql)
    err=$("$client" --defaults-extra-file="$cnf" --connect-timeout=2 -e "SET GLOBAL read_only=$ro" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        line="$line read_only=$ro ok"
    else
        line="$line read_only=$ro failed (exit $rc): $(printf '%s' "$err" | tr '\n' ' ')"
    fi
fi
printf '%s\n' "$line" >> "$log"
