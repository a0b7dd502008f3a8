# The VM's configuration on its Proxmox host, then what its guest agent
# sees: the agent is an access path of its own (it needs no network in the
# VM), tried the way the operator did. The marker line separates the two.
qm config @@vmid@@ || exit
echo @@agent_mark@@
qm guest cmd @@vmid@@ network-get-interfaces 2>&1 || true
