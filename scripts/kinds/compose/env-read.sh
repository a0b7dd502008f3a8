# Read .env; every value is replaced here, on the host, by its SHA-256, so
# no value ever travels: `KEY=sha256:HEX` for a secret (declared, or secret
# by the rule), `KEY=plain-sha256:HEX` for any other. Comments and lines
# without `=` are not sent (they hold no setting).
#% include "lib/secret-rule.sh"
sp_hash() { h=$(printf '%s' "${l#*=}" | sha256sum); printf '%s=%s:%s\n' "$k" "$1" "${h%% *}"; }
f=@@path@@
if [ ! -e "$f" ]; then sp_kv f.exists 0; exit 0; fi
sp_kv f.exists 1
m=$(stat -c '%a %U' -- "$f")
sp_kv f.mode "${m%% *}"
sp_kv f.owner "${m#* }"
[ -r "$f" ] || { sp_kv f.error "permission denied reading $f"; exit 0; }
while IFS= read -r l || [ -n "$l" ]; do
  k=${l%%=*}
  case "$k" in
    \#*|''|"$l") ;;
#% for key in secrets
    @@key@@) sp_hash sha256 ;;
#% endfor
    *) if sp_is_secret "$k" "${l#*=}"; then sp_hash sha256; else sp_hash plain-sha256; fi ;;
  esac
done < "$f" | sp_b64 f.content
