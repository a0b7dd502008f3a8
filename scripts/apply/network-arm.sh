# A change that may cut this session: stage it, check it, arm the rollback
# timer (detached from this session), then activate in the background.
@@change@@
if ! out=$(sh -c @@check@@ 2>&1); then
#% for path in files
  if [ -e "$BK"@@path@@ ]; then
    cp -a -- "$BK"@@path@@ @@path@@
    chmod -- "$(cat -- "$BK"@@path@@.mode)" @@path@@
  else
    rm -f -- @@path@@
  fi
#% endfor
  echo "the new configuration is rejected: $out"
  exit 4
fi
: > @@armed@@
printf '%s' @@rollback_b64@@ | base64 -d > @@rollback_file@@
setsid sh @@rollback_file@@ </dev/null >/dev/null 2>&1 &
# The confirmation counts only once the activation has finished. The inner
# script takes its arguments as $1/$2, so the single quotes are meant.
rm -f -- @@activated@@
# shellcheck disable=SC2016
setsid sh -c 'sh -c "$1" && : > "$2"' sh @@activate_later@@ @@activated@@ </dev/null >@@log@@ 2>&1 &
echo SPINE-ARMED
