# Set the node's hostname (and accept-dns), keeping the old status.
tailscale status --json > "$BK/tailscale-status.json" 2>/dev/null || true
#% if accept_dns is none
tailscale set --hostname=@@hostname@@
#% else
tailscale set --hostname=@@hostname@@ --accept-dns=@@accept_dns@@
#% endif
