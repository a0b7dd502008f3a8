# Bring the node up if it is not, then set its hostname (and accept-dns),
# keeping the old status.
tailscale status --json > "$BK/tailscale-status.json" 2>/dev/null || true
#% if up
# A logged-in node that was stopped: `tailscale up` with no flags only starts it.
tailscale up
#% endif
#% if accept_dns is none
tailscale set --hostname=@@hostname@@
#% else
tailscale set --hostname=@@hostname@@ --accept-dns=@@accept_dns@@
#% endif
