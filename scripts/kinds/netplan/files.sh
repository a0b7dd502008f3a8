# Every file netplan reads, found as netplan generate(8) finds them: *.yaml
# in /lib/netplan, /etc/netplan and /run/netplan (spine works out which
# shadow which: /run over /etc over /lib, for files of the same name).
i=0
for f in /lib/netplan/*.yaml /etc/netplan/*.yaml /run/netplan/*.yaml; do
  [ -e "$f" ] || continue
  i=$((i+1))
  sp_kv "n.$i.path" "$f"
  sp_file "n.$i" "$f"
done
sp_kv n.count "$i"
