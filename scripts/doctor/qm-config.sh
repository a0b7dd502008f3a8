qm config @@vmid@@
