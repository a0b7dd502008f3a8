# Renew the host lock while this run holds it: the new info (a later expiry)
# replaces the old in one rename, so the lock is never without info.
L=@@lock@@
if [ -f "$L" ] && grep -qF -- @@needle@@ "$L" 2>/dev/null; then
  t=$(mktemp @@state@@/.lock.XXXXXX)
  printf '%s\n' @@info@@ > "$t"
  mv -f -- "$t" "$L"
  echo SPINE-LOCK-RENEWED
fi
