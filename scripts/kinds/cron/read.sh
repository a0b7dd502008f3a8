# The user's crontab, and whether each script its jobs run is executable.
sp_missing crontab || exit 0
if [ "$SP_USER" = @@user@@ ]; then out=$(crontab -l 2>&1); else out=$(sp_sudo crontab -l -u @@user@@ 2>&1); fi; rc=$?
sp_kv rc "$rc"
printf '%s' "$out" | sp_b64 crontab
#% for script in scripts
if [ -x @@script@@ ]; then sp_kv script.@@loop.index0@@ executable
elif [ -e @@script@@ ]; then sp_kv script.@@loop.index0@@ not-executable
else sp_kv script.@@loop.index0@@ missing; fi
#% endfor
