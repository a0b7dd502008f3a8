# Run as root on the Proxmox host: the addresses the VM really has, from the
# guest agent (JSON).
qm guest cmd @@vmid@@ network-get-interfaces
