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
printf '%s' "$files" | while IFS= read -r f; do sp_sudo cat -- "$f"; done | grep -v '^[[:space:]]*#' | tr -s " \t;|&<>()\"'=" '\n' | grep '^/' | sort -u | while IFS= read -r p; do
  if sp_sudo test -x "$p" && sp_sudo test -f "$p"; then s=x; elif sp_sudo test -e "$p"; then s=f; else s=-; fi
  printf '%s|%s\n' "$p" "$s"
done | sp_b64 paths
