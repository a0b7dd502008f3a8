# The cron tables as root, run by tables-read.sh in one sudo call (or as is
# when the login user is root): each user's crontab, /etc/crontab and
# /etc/cron.d/* (names cron reads: letters, digits, `_`, `-`), then the state
# of every absolute path their jobs mention: x (an executable file), f
# (there, but not an executable file), - (missing). $1: the login user's uid.
#% include "lib/frame.sh"
export LC_ALL=C
uid=$1
spool=/var/spool/cron/crontabs
set --
if [ -d "$spool" ]; then
  for f in "$spool"/*; do [ -e "$f" ] && set -- "$@" "$f"; done
elif [ "$uid" != 0 ]; then
  sp_kv unknown "cannot list $spool (run as root or allow passwordless sudo)"
  exit 0
fi
[ -f /etc/crontab ] && set -- "$@" /etc/crontab
for f in /etc/cron.d/*; do
  case "${f##*/}" in *[!A-Za-z0-9_-]*) continue ;; esac
  [ -f "$f" ] && set -- "$@" "$f"
done
i=0
for f; do
  i=$((i+1))
  sp_kv "t.$i.name" "$f"
  case $f in "$spool"/*) sp_kv "t.$i.user" "${f#"$spool"/}" ;; *) sp_kv "t.$i.user" '' ;; esac
  sp_b64 "t.$i.text" < "$f"
done
sp_kv count "$i"
if [ $# -gt 0 ]; then cat -- "$@"; fi | grep -v '^[[:space:]]*#' | tr -s " \t;|&<>()\"'=" '\n' | grep '^/' | sort -u \
  | while IFS= read -r p; do
      if [ -x "$p" ] && [ -f "$p" ]; then s=x; elif [ -e "$p" ]; then s=f; else s=-; fi
      printf '%s|%s\n' "$p" "$s"
    done | sp_b64 paths
