# Read .env; the values of secret keys are replaced here, on the host, by
# their SHA-256, so they never travel.
#% include "lib/secret-rule.sh"
sp_hash() { printf '%s=sha256:%s\n' "$k" "$(printf '%s' "${l#*=}" | sha256sum | cut -d' ' -f1)"; }
f=@@path@@
if [ ! -e "$f" ]; then sp_kv f.exists 0; exit 0; fi
sp_kv f.exists 1
sp_kv f.mode "$(stat -c %a -- "$f")"
sp_kv f.owner "$(stat -c %U -- "$f")"
[ -r "$f" ] || { sp_kv f.error "permission denied reading $f"; exit 0; }
while IFS= read -r l || [ -n "$l" ]; do
  k=${l%%=*}
  case "$k" in
    \#*|'') printf '%s\n' "$l" ;;
#% for key in secrets
    @@key@@) sp_hash ;;
#% endfor
    *) if sp_is_secret "$k" "${l#*=}"; then sp_hash; else printf '%s\n' "$l"; fi ;;
  esac
done < "$f" | sp_b64 f.content
