# Remove jobs under legacy roots from the cron tables that hold them (each
# table kept under $BK first); then report what spine does not fix.
#% for t in crontabs
crontab -l -u @@t.user@@ > "$BK/crontab.$(printf %s @@t.user@@ | tr / _)" 2>/dev/null || true
t=$(mktemp)
printf '%s' @@t.b64@@ | base64 -d > "$t"
if ! crontab -u @@t.user@@ "$t"; then rm -f -- "$t"; echo "crontab -u "@@t.user@@" failed"; exit 1; fi
rm -f -- "$t"
printf 'removed legacy jobs from the crontab of %s\n' @@t.user@@
#% endfor
#% for t in files
sp_backup @@t.path@@
sp_put @@t.path@@ "$(stat -c %a -- @@t.path@@)" "$(stat -c %U -- @@t.path@@)" @@t.b64@@
printf 'removed legacy jobs from %s\n' @@t.path@@
#% endfor
#% for m in unfixed
printf '%s\n' @@m@@
#% endfor
#% if unfixed
exit 3
#% endif
