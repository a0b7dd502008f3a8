# Set the VM's cloud-init network, keeping its old config.
qm config @@vmid@@ > "$BK/qm-config-$(printf %s @@vmid@@ | tr / _).txt"
qm set @@vmid@@ --ipconfig0 @@ipconfig0@@ --nameserver @@nameserver@@
