#!/bin/sh
# spine gather: read-only. One framed section per resource; every value is
# printed as `key=BASE64` (sp_kv, sp_b64), the frame lines carry the boundary.
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
B=@@boundary@@
sp_kv() { printf '%s' "$2" | tr '\n' ' ' | sp_b64 "$1"; }
sp_b64() { printf '%s=' "$1"; base64 | tr -d '\n'; printf '\n'; }
sp_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 126; fi; }
sp_file() {
  if [ -e "$2" ] || sp_sudo test -e "$2" 2>/dev/null; then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "$(sp_sudo stat -c %a -- "$2" 2>/dev/null || stat -c %a -- "$2")"
    sp_kv "$1.owner" "$(sp_sudo stat -c %U -- "$2" 2>/dev/null || stat -c %U -- "$2")"
    if [ -r "$2" ]; then sp_b64 "$1.content" < "$2";
    elif sp_sudo cat -- "$2" > /dev/null 2>&1; then sp_sudo cat -- "$2" | sp_b64 "$1.content";
    else sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"; fi
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
