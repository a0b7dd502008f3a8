# As the login user first, like a person would; sudo -n where only root may ask.
printf '==ts\n'
ts=$(tailscale status --json 2>/dev/null) || ts=$(sudo -n tailscale status --json 2>/dev/null)
printf '%s' "$ts"
printf '\n==ip\n'
ip -o -4 addr show scope global 2>/dev/null
