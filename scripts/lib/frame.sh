# How a gather script prints a value: one line, `key:VALUE` when the value
# is plain (letters, digits, space and `_./@%+,:=-`: printed as is, no
# process), else `key=BASE64` (one `base64` per value; sp_kv makes a line
# break a space, sp_b64 keeps every byte of its stdin). src/gather/script.rs
# parses both.
sp_kv() {
  case $2 in
    *[!A-Za-z0-9_./@%+,:=\ -]*) printf '%s' "$2" | tr '\n' ' ' | sp_b64 "$1" ;;
    *) printf '%s:%s\n' "$1" "$2" ;;
  esac
}
sp_b64() { printf '%s=' "$1"; base64 -w0; printf '\n'; }
