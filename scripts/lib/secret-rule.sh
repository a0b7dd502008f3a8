# sp_is_secret KEY VALUE: succeeds when the pair is secret. The one
# secret-key rule of src/secrets (the same word lists, rendered here), so the
# host hashes exactly the values spine treats as secret.
sp_is_secret() {
  sp_k=_$(printf '%s' "$1" | tr 'abcdefghijklmnopqrstuvwxyz.-' 'ABCDEFGHIJKLMNOPQRSTUVWXYZ__')_
  case "$sp_k" in
#% for w in plain_last_words
    *_@@w@@_) ;;
#% endfor
#% for w in secret_words
    *_@@w@@_*) return 0 ;;
#% endfor
#% for w in secret_suffixes
    *@@w@@_*) return 0 ;;
#% endfor
  esac
  case "$2" in
    *://*@*) sp_u=${2#*://}; sp_u=${sp_u%%@*}
      case "$sp_u" in */*) ;; *:*) return 0 ;; esac ;;
  esac
  return 1
}
