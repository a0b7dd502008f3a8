# Every cron table on the host and the state of every absolute path their
# jobs mention, read as root in one sudo call (tables-root.sh, quoted here).
sp_missing crontab || exit 0
if [ "$SP_SUDO" = none ]; then
  sp_kv unknown "cannot list /var/spool/cron/crontabs (run as root or allow passwordless sudo)"
  exit 0
fi
# shellcheck disable=SC2016 # the script is the inner shell's, quoted
sp_sudo sh -c @@root@@ sh "$SP_UID" || sp_kv unknown "the cron tables could not be read as root (sudo -n sh failed)"
