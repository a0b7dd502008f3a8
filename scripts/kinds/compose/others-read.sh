# The compose files that `docker compose`, run by hand in the stack's folder,
# reads instead of docker-compose.yml (the default names it prefers to it):
# each one that is there. Looked for as the login user, else through sudo; a
# folder that cannot be looked into is unknown, never clean.
d=@@directory@@
if [ -x "$d" ]; then as=
elif [ "$SP_SUDO" != none ]; then as=sp_sudo
elif [ -e "$d" ]; then sp_kv unknown "cannot look into $d as $(id -un): run as root or allow passwordless sudo"; exit 0
else sp_kv checked 1; exit 0
fi
if $as test -d "$d"; then
  for f in compose.yaml compose.yml; do
    if $as test -e "$d/$f" || $as test -L "$d/$f"; then sp_kv "file.$f" 1; fi
  done
fi
sp_kv checked 1
