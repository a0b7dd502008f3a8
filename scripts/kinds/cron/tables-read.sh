# Every cron table on the host: each user's crontab, /etc/crontab and
# /etc/cron.d/* (names cron reads: letters, digits, `_`, `-`), then the state
# of every absolute path their jobs mention.
sp_missing crontab || exit 0
i=0
files=''
sp_table() {
  i=$((i+1))
  files="$files$1
"
  sp_kv "t.$i.name" "$1"
  sp_kv "t.$i.user" "$2"
  sp_sudo cat -- "$1" | sp_b64 "t.$i.text"
}
spool=/var/spool/cron/crontabs
if sp_sudo test -d "$spool"; then
  for u in $(sp_sudo ls -1 -- "$spool"); do sp_table "$spool/$u" "$u"; done
elif [ "$(id -u)" != 0 ]; then
  sp_kv unknown "cannot list $spool (run as root or allow passwordless sudo)"
  exit 0
fi
[ -f /etc/crontab ] && sp_table /etc/crontab ''
for f in /etc/cron.d/*; do
  case "${f##*/}" in *[!A-Za-z0-9_-]*) continue ;; esac
  [ -f "$f" ] && sp_table "$f" ''
done
sp_kv count "$i"
# The state of every path, checked as root in one sudo call: x (an executable
# file), f (there, but not an executable file), - (missing).
# shellcheck disable=SC2016
printf '%s' "$files" | while IFS= read -r f; do sp_sudo cat -- "$f"; done | grep -v '^[[:space:]]*#' | tr -s " \t;|&<>()\"'=" '\n' | grep '^/' | sort -u \
  | sp_sudo sh -c 'while IFS= read -r p; do if [ -x "$p" ] && [ -f "$p" ]; then s=x; elif [ -e "$p" ]; then s=f; else s=-; fi; printf "%s|%s\n" "$p" "$s"; done' \
  | sp_b64 paths
