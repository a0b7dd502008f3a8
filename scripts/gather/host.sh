#!/bin/sh
# spine gather: read-only. One framed section per resource, the frame lines
# carry the boundary; every value is one line (lib/frame.sh: sp_kv, sp_b64).
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
B=@@boundary@@
#% include "lib/frame.sh"
# Who reads (asked once per host, not once per read): SP_USER, SP_UID; and
# whether root-only reads run as is, through passwordless sudo, or not at all
# (each sudo costs a PAM session).
SP_USER=$(id -un); SP_UID=$(id -u)
if [ "$SP_UID" = 0 ]; then SP_SUDO=root; elif sudo -n true 2>/dev/null; then SP_SUDO=sudo; else SP_SUDO=none; fi
sp_sudo() { case $SP_SUDO in root) "$@" ;; sudo) sudo -n "$@" ;; *) return 126 ;; esac; }
# A file's existence, mode, owner and content: as the login user when it can
# read it, else in one sudo call (mode, owner and the content's base64 on one
# line; exit 3 when only the content could not be read).
# shellcheck disable=SC2016 # $1 is the inner shell's
sp_root_file() { sp_sudo sh -c 'stat --printf="%a %U " -- "$1" || exit 1; base64 -w0 -- "$1" || exit 3' sh "$1"; }
sp_file() {
  if [ -f "$2" ] && [ -r "$2" ]; then
    m=$(stat -c '%a %U' -- "$2")
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "${m%% *}"
    sp_kv "$1.owner" "${m#* }"
    sp_b64 "$1.content" < "$2"
  elif m=$(sp_root_file "$2" 2>/dev/null)
    sp_rc=$?; [ "$sp_rc" = 0 ] || [ "$sp_rc" = 3 ]; then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "${m%% *}"
    m=${m#* }
    sp_kv "$1.owner" "${m%% *}"
    if [ "$sp_rc" = 0 ]; then printf '%s=%s\n' "$1.content" "${m#* }";
    else sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"; fi
  elif [ -e "$2" ]; then
    m=$(stat -c '%a %U' -- "$2")
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "${m%% *}"
    sp_kv "$1.owner" "${m#* }"
    sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"
  else
    sp_kv "$1.exists" 0
  fi
}
sp_missing() { command -v "$1" >/dev/null 2>&1 || { sp_kv unknown "$1 is not installed on this host"; return 1; }; }
printf '%s host %s %s\n' "$B" "$SP_USER" "$(hostname)"
#% for s in sections
printf '%s section %s\n' "$B" @@s.id@@
(
@@s.read@@
) 2>/dev/null
printf '%s end %s %s\n' "$B" @@s.id@@ "$?"
#% endfor
