# Release the host lock if it is still the one named (`needle`, a piece of
# its info), or, without a needle, if it is a lock without info.
L=@@lock@@
if [ -d "$L" ]; then I="$L/info"; else I="$L"; fi
#% if needle is none
if [ -e "$L" ] && ! grep -qF -- '"lock_id":' "$I" 2>/dev/null; then
#% else
if grep -qF -- @@needle@@ "$I" 2>/dev/null; then
#% endif
  rm -rf -- "$L"
  echo SPINE-UNLOCKED
fi
