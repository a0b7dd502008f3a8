# Run as root on the Proxmox host: store the VM's cloud-init network and
# rebuild its cloud-init drive now.
command -v qm >/dev/null 2>&1 || { echo "qm not found: is this a Proxmox host?"; exit 3; }
qm set @@vmid@@ --ipconfig0 @@ipconfig0@@ --nameserver @@nameserver@@
qm cloudinit update @@vmid@@
