# spine import: every netplan file, as text (read-only), with its mode and owner.
i=0
for f in /etc/netplan/*.yaml /etc/netplan/*.yml; do
  [ -f "$f" ] || continue
  i=$((i+1))
  sp_kv "n.$i.path" "$f"
  sp_file "n.$i" "$f"
done
sp_kv count "$i"
