# The managed interface as it is live (`ip -j`), and what netplan makes of
# every file it reads (`netplan get all`; the files themselves when this
# netplan has no `get`).
sp_missing ip || exit 0
if a=$(ip -j addr show dev @@interface@@ 2>&1); then
  printf '%s' "$a" | sp_b64 addr
else
  sp_kv addr.error "$a"
fi
if r=$(ip -j @@family@@ route show default 2>&1); then
  printf '%s' "$r" | sp_b64 routes
else
  sp_kv routes.error "$r"
fi
if e=$(sp_sudo netplan get all 2>/dev/null); then
  printf '%s' "$e" | sp_b64 effective
else
@@files@@
fi
