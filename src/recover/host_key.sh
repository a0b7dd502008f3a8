# Run as root on the Proxmox host. Set by spine before this file (quoted):
# VMID
# The guest's SSH host key, read through the guest agent (a channel that does
# not depend on the VM's network or on its SSH key).
qm guest exec "$VMID" -- cat /etc/ssh/ssh_host_ed25519_key.pub
