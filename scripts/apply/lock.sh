# Take the host lock: an atomic mkdir, then who holds it.
mkdir -p -- @@state@@
if mkdir -- @@lock@@ 2>/dev/null; then
  printf '%s\n' @@info@@ > @@lock@@/info
  echo SPINE-LOCK-TAKEN
else
  echo SPINE-LOCK-HELD
  cat -- @@lock@@/info 2>/dev/null || true
fi
