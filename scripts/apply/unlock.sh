# Release the host lock if it is still the one named (`needle`, a piece of
# its info), or, without a needle, if it is a lock without info.
L=@@lock@@
if [ -d "$L" ]; then I="$L/info"; else I="$L"; fi
#% if needle is none
NEEDLE='"lock_id":'; WANT=absent
#% else
NEEDLE=@@needle@@; WANT=present
#% endif
if [ -e "$L" ]; then
  if grep -qF -- "$NEEDLE" "$I" 2>/dev/null; then HAS=present; else HAS=absent; fi
  if [ "$HAS" = "$WANT" ]; then
    rm -rf -- "$L"
    echo SPINE-UNLOCKED
  fi
fi
