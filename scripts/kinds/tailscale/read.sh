# The node's status (HostName) and prefs (CorpDNS is accept-dns).
sp_missing tailscale || exit 0
tailscale status --json 2>&1 | sp_b64 status
sp_sudo tailscale debug prefs 2>&1 | sp_b64 prefs
