# Who holds the host lock, if anyone.
cat -- @@lock@@/info 2>/dev/null || true
