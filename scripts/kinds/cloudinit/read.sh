# The VM's cloud-init settings on its Proxmox host.
sp_missing qm || exit 0
out=$(sp_sudo qm config @@vmid@@ 2>&1)
sp_kv rc $?
printf '%s' "$out" | sp_b64 config
# Settings made with `qm set` but not yet on the VM's cloud-init drive.
pend=$(sp_sudo qm cloudinit pending @@vmid@@ 2>/dev/null)
printf '%s' "$pend" | sp_b64 pending
