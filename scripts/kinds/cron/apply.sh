# Install the user's new crontab. A job whose script is missing would fail
# silently every night: refuse before changing anything.
#% for script in scripts
[ -x @@script@@ ] || { printf 'script %s is missing or not executable: deploy it first\n' @@script@@; exit 3; }
#% endfor
crontab -l -u @@user@@ > "$BK/crontab.$(printf %s @@user@@ | tr / _)" 2>/dev/null || true
t=$(mktemp)
if printf '%s' @@crontab_b64@@ | base64 -d > "$t" && crontab -u @@user@@ "$t"; then
  rm -f -- "$t"
else
  rc=$?
  rm -f -- "$t"
  echo "crontab -u "@@user@@" failed (exit $rc)"
  false
fi
