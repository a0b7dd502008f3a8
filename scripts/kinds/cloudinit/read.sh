# The VM's cloud-init settings on its Proxmox host.
sp_missing qm || exit 0
out=$(sp_sudo qm config @@vmid@@ 2>&1)
sp_kv rc $?
printf '%s' "$out" | sp_b64 config
# Settings made with `qm set` but not yet on the VM's cloud-init drive.
pend=$(sp_sudo qm cloudinit pending @@vmid@@ 2>/dev/null)
printf '%s' "$pend" | sp_b64 pending
# The VM's run state and, when it runs with its guest agent enabled, the
# addresses the agent reports: what the plan can still say about a VM that
# is unreachable on every path.
st=$(sp_sudo qm status @@vmid@@ 2>&1)
printf '%s' "$st" | sp_b64 status
case $st in
  *running*)
    if printf '%s\n' "$out" | grep -Eq '^agent: *(1|.*enabled=1)'; then
      ag=$(sp_sudo timeout 15 qm guest cmd @@vmid@@ network-get-interfaces 2>&1)
      sp_kv agent_rc $?
      printf '%s' "$ag" | sp_b64 agent
    fi
    ;;
esac
