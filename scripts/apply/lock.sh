# Take the host lock. Its info is written to a temporary file first and then
# linked into place: link(2) is atomic and fails when the lock exists (a file,
# or the folder an older spine made), so a lock never exists without its info.
mkdir -p -- @@state@@
t=$(mktemp @@state@@/.lock.XXXXXX)
trap 'rm -f -- "$t"' EXIT
printf '%s\n' @@info@@ > "$t"
if ln -T -- "$t" @@lock@@ 2>/dev/null; then
  rm -f -- "$t"
  echo SPINE-LOCK-TAKEN
else
  rm -f -- "$t"
  echo SPINE-LOCK-HELD
fi
