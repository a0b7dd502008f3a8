# Make the netplan configuration live.
netplan apply
