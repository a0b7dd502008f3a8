# spine import: the compose projects on this host, read-only. `docker compose
# ls` names them; the compose labels of their containers give each project's
# folder and files (one tab-separated line per project). Each file is sent as
# text; the .env as key names, with the value only for a key the secret-key
# rule does not call secret (a secret value never leaves the host); the
# image each container runs, with its registry digests.
#% include "lib/secret-rule.sh"
sp_missing docker || exit 0
ls=$(sp_sudo docker compose ls --all --format json 2>&1)
sp_kv ls.rc $?
printf '%s' "$ls" | sp_b64 ls
t=$(printf '\t')
list=$(sp_sudo docker ps -a --filter label=com.docker.compose.project \
  --format '{{.Label "com.docker.compose.project"}}	{{.Label "com.docker.compose.project.working_dir"}}	{{.Label "com.docker.compose.project.config_files"}}' |
  sort -u | awk -F "$t" '!seen[$1]++')
printf '%s\n' "$list" | {
  i=0
  while IFS="$t" read -r name dir files; do
    [ -n "$name" ] || continue
    i=$((i+1))
    sp_kv "p.$i.name" "$name"
    sp_kv "p.$i.dir" "$dir"
    printf '%s\n' "$files" | tr ',' '\n' | {
      j=0
      while IFS= read -r f; do
        [ -n "$f" ] || continue
        j=$((j+1))
        sp_kv "p.$i.f.$j.path" "$f"
        sp_file "p.$i.f.$j" "$f"
      done
      sp_kv "p.$i.files" "$j"
    }
    e="$dir/.env"
    if sp_sudo test -f "$e"; then
      sp_kv "p.$i.env.exists" 1
      sp_kv "p.$i.env.mode" "$(sp_sudo stat -c %a -- "$e")"
      sp_kv "p.$i.env.owner" "$(sp_sudo stat -c %U -- "$e")"
      sp_sudo cat -- "$e" | while IFS= read -r l || [ -n "$l" ]; do
        k=${l%%=*}
        case "$k" in
          \#*|''|"$l") ;;
          *) if sp_is_secret "$k" "${l#*=}"; then printf 'S %s\n' "$k"; else printf 'P %s\n' "$l"; fi ;;
        esac
      done | sp_b64 "p.$i.env.keys"
    else
      sp_kv "p.$i.env.exists" 0
    fi
    # The image each container runs: its service, the image as compose
    # wrote it, the image id, and the registry digests of that image (what
    # the operator could pin a moving tag to).
    ids=$(sp_sudo docker ps -aq --filter "label=com.docker.compose.project=$name")
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one word per container id
      sp_sudo docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}{{"\t"}}{{.Config.Image}}{{"\t"}}{{.Image}}' $ids |
        while IFS="$t" read -r svc img id; do
          dg=$(sp_sudo docker image inspect --format '{{join .RepoDigests " "}}' "$id" 2>/dev/null)
          printf '%s\t%s\t%s\t%s\n' "$svc" "$img" "$id" "$dg"
        done | sp_b64 "p.$i.images"
    fi
  done
  sp_kv count "$i"
}
