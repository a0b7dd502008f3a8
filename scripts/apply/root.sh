#!/bin/sh
# spine apply: runs as root (sh -s, or sudo -n sh -s). $BK is this run's
# backup folder on the host; every change keeps what it replaces there.
set -eu
umask 077
# A backup is root's alone: folders 0700 (umask), the copy 0600, its own
# mode kept beside it in FILE.mode (sp_restore puts it back).
sp_backup() {
  mkdir -p -- "$BK$(dirname -- "$1")"
  if [ -e "$1" ]; then
    cp -a -- "$1" "$BK$1"
    stat -c %a -- "$1" > "$BK$1.mode"
    chmod 600 -- "$BK$1"
  else
    : > "$BK$1.absent"
  fi
}
sp_put() {
  d=$(dirname -- "$1"); mkdir -p -- "$d"
  t=$(mktemp "$d/.spine.XXXXXX") || { echo "cannot create a file in $d"; return 1; }
  if ! printf '%s' "$4" | base64 -d > "$t"; then rm -f -- "$t"; echo "cannot write $1: no space left or read-only"; return 1; fi
  chmod -- "$2" "$t"; chown -- "$3" "$t"
  sync "$t" 2>/dev/null || sync
  mv -f -- "$t" "$1"
  sync "$d" 2>/dev/null || true
}
#% if backup is none
BK=/nonexistent
#% else
BK=@@backup@@
mkdir -p -- "$BK"
chmod 700 -- "$(dirname -- "$BK")" "$BK"
#% endif
#% if wait_timeout is not none
SPINE_WAIT_TIMEOUT=@@wait_timeout@@
export SPINE_WAIT_TIMEOUT
#% endif
@@body@@
