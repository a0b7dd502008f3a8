# Run as root on the Proxmox host: the guest's SSH host key, read through the
# guest agent (a channel that depends neither on the VM's network nor on its
# SSH key).
qm guest exec @@vmid@@ -- cat /etc/ssh/ssh_host_ed25519_key.pub
