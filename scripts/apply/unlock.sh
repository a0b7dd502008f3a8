# Release the host lock if it is still ours.
if grep -qF -- @@needle@@ @@lock@@/info 2>/dev/null; then
  rm -rf -- @@lock@@
  echo SPINE-UNLOCKED
fi
