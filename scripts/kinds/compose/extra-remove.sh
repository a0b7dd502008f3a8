# Remove containers that are extra beside the stack. Each one's configuration
# (`docker inspect`) is kept in the run's backup folder; volumes stay.
mkdir -p -- "$BK/containers"
#% for name in names
docker inspect -- @@name@@ > "$BK/containers/$(printf %s @@name@@ | tr / _).json"
docker rm -f -- @@name@@ >/dev/null
printf 'removed container %s\n' @@name@@
#% endfor
