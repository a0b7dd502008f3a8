# Run as root on the Proxmox host. Set by spine before this file (quoted):
# VMID
# The addresses the VM really has, from the guest agent (JSON).
qm guest cmd "$VMID" network-get-interfaces
