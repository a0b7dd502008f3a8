# The VM's configuration on its Proxmox host, then the guest agent as an
# access path of its own (it needs no network in the VM), tried the way the
# operator did: the VM's run state, the addresses the agent reports, and a
# command run through it. Marker lines separate the parts.
qm config @@vmid@@ || exit
echo @@agent_mark@@ status
qm status @@vmid@@ 2>&1 || true
echo @@agent_mark@@ addresses
qm guest cmd @@vmid@@ network-get-interfaces 2>&1 || true
echo @@agent_mark@@ exec
qm guest exec @@vmid@@ -- uname -srm 2>&1 || true
