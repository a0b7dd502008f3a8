# Stage the network change, check it, arm the rollback timer (detached from
# this session), then apply in the background.
@@change@@
if ! out=$(netplan generate 2>&1); then
  if [ -e "$BK"@@path@@ ]; then cp -a -- "$BK"@@path@@ @@path@@; else rm -f -- @@path@@; fi
  echo "netplan generate rejects the new file: $out"
  exit 4
fi
: > @@armed@@
printf '%s' @@rollback_b64@@ | base64 -d > @@rollback_file@@
setsid sh @@rollback_file@@ </dev/null >/dev/null 2>&1 &
setsid sh -c 'sleep 1; netplan apply' </dev/null >@@log@@ 2>&1 &
echo SPINE-ARMED
