# Who holds the host lock, if anyone: its age in seconds, then its info (a
# file; an older spine made a folder holding `info`). A lock without
# readable info prints its age only.
L=@@lock@@
[ -e "$L" ] || exit 0
if [ -d "$L" ]; then I="$L/info"; else I="$L"; fi
echo "SPINE-LOCK-AGE $(( $(date +%s) - $(stat -c %Y -- "$L") ))"
cat -- "$I" 2>/dev/null || true
