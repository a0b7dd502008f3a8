# Does netplan accept the staged files? (writes the backend config, changes nothing live)
netplan generate
