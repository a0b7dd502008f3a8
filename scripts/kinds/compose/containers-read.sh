# The project's containers, found by their compose label (compose v1 and v2).
sp_missing docker || exit 0
ids=$(docker ps -aq --filter label=com.docker.compose.project=@@project@@ 2>&1) || { sp_kv unknown "docker: $ids"; exit 0; }
[ -z "$ids" ] && exit 0
# shellcheck disable=SC2086 # one container id per word
docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.Config.Image}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids | sp_b64 ps
