# Keep the backup folders of the last @@keep@@ runs on this host (run ids
# sort by time; this run's folder always stays) and keep them root's alone.
D=@@backups@@
[ -d "$D" ] || exit 0
chmod 700 -- "$D"
n=@@keep@@
[ -d "$D"/@@current@@ ] || n=$((n + 1))
find "$D" -mindepth 1 -maxdepth 1 -type d ! -name @@current@@ -printf '%f\n' |
  sort -r | tail -n +"$n" | while IFS= read -r old; do
  rm -rf -- "${D:?}/$old"
  echo "pruned $old"
done
