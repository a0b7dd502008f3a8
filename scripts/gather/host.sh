#!/bin/sh
# spine gather: read-only. One framed section per resource; every value is
# printed as `key=BASE64` (sp_kv, sp_b64), the frame lines carry the boundary.
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
B=@@boundary@@
sp_kv() { printf '%s' "$2" | tr '\n' ' ' | sp_b64 "$1"; }
sp_b64() { printf '%s=' "$1"; base64 | tr -d '\n'; printf '\n'; }
# Whether root-only reads run as is, through passwordless sudo, or not at all:
# asked once per host, not once per read (each sudo costs a PAM session).
if [ "$(id -u)" = 0 ]; then SP_SUDO=root; elif sudo -n true 2>/dev/null; then SP_SUDO=sudo; else SP_SUDO=none; fi
sp_sudo() { case $SP_SUDO in root) "$@" ;; sudo) sudo -n "$@" ;; *) return 126 ;; esac; }
# A file's existence, mode, owner and content: as the login user when it can
# read it, else in two sudo calls (stat, then the content).
sp_file() {
  if [ -f "$2" ] && [ -r "$2" ]; then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "$(stat -c %a -- "$2")"
    sp_kv "$1.owner" "$(stat -c %U -- "$2")"
    sp_b64 "$1.content" < "$2"
  elif m=$(sp_sudo stat -c '%a %U' -- "$2" 2>/dev/null); then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "${m% *}"
    sp_kv "$1.owner" "${m#* }"
    if c=$(sp_sudo base64 -- "$2" 2>/dev/null); then printf '%s=%s\n' "$1.content" "$(printf '%s' "$c" | tr -d '\n')";
    else sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"; fi
  elif [ -e "$2" ]; then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "$(stat -c %a -- "$2")"
    sp_kv "$1.owner" "$(stat -c %U -- "$2")"
    sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"
  else
    sp_kv "$1.exists" 0
  fi
}
sp_missing() { command -v "$1" >/dev/null 2>&1 || { sp_kv unknown "$1 is not installed on this host"; return 1; }; }
printf '%s host %s %s\n' "$B" "$(id -un)" "$(hostname)"
#% for s in sections
printf '%s section %s\n' "$B" @@s.id@@
(
@@s.read@@
) 2>/dev/null
printf '%s end %s %s\n' "$B" @@s.id@@ "$?"
#% endfor
