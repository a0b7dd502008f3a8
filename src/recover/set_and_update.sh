# Run as root on the Proxmox host. Set by spine before this file (quoted):
# VMID IPCONFIG0 NAMESERVER
# Store the cloud-init network and rebuild the VM's cloud-init drive now.
command -v qm >/dev/null 2>&1 || { echo "qm not found: is this a Proxmox host?"; exit 3; }
qm set "$VMID" --ipconfig0 "$IPCONFIG0" --nameserver "$NAMESERVER"
qm cloudinit update "$VMID"
