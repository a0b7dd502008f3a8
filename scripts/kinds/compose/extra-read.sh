# Every container on the host: name|compose project|compose service|published
# host ports; spine picks the stack's orphans, legacy containers and port
# holders from these.
sp_missing docker || exit 0
ids=$(docker ps -aq 2>&1) || { sp_kv unknown "docker: $ids"; exit 0; }
[ -z "$ids" ] && exit 0
# shellcheck disable=SC2086 # one container id per word
docker inspect --format '{{.Name}}|{{index .Config.Labels "com.docker.compose.project"}}|{{index .Config.Labels "com.docker.compose.service"}}|{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostPort}},{{end}}{{end}}' $ids | sp_b64 all
