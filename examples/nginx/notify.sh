#!/bin/sh
# keepalived / vrrpd generic `notify` hook: one line per VRRP transition, for ops tooling.
#
#   notify.sh LOG TYPE NAME STATE PRIORITY
#
# LOG comes from the config; keepalived appends the other four: TYPE is INSTANCE or GROUP, STATE
# is MASTER, BACKUP, FAULT, STOP or DELETED, PRIORITY the effective priority (0 for a group).
# Each line is `<ISO 8601 time> <TYPE> <NAME> <STATE> <PRIORITY>`, written with one append so
# hooks that run at the same time never interleave.
if [ $# -ne 5 ]; then
    echo "usage: $0 LOG TYPE NAME STATE PRIORITY (got: $*)" >&2
    exit 2
fi
log=$1
mkdir -p "$(dirname "$log")"
printf '%s %s %s %s %s\n' "$(date -Iseconds)" "$2" "$3" "$4" "$5" >> "$log"
