"""What `spine plan` reads on each plan-bench host (benches/plan.rs), as a
pyinfra deploy run with `pyinfra --dry`: the same files and the same command
outputs, compared with the same desired state (the files `spine render` wrote
for the host, under the host's `desired_dir`). A difference is an operation
that would run; a read that fails fails the host. See benches/peers/README.md
for the mapping, section by section.
"""

import base64
import json
import re
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

want = Path(host.data.desired_dir) / host.name
STACK = "/home/ronny/immich"
LEGACY_ROOT = "/home/ronny/ronny-ops"


def read(command, sudo=False):
    """A command's output; a command that fails (or prints nothing) fails the host."""
    out = host.get_fact(Command, command, _sudo=sudo)
    if out is None:
        raise RuntimeError(f"{host.name}: `{command}` failed")
    return out


files.put(
    name="Netplan file (root-only, read with sudo)",
    src=str(want / "50-cloud-init.yaml"),
    dest="/etc/netplan/50-cloud-init.yaml",
    user="root",
    group="root",
    mode="600",
    _sudo=True,
)
files.put(
    name="Compose file",
    src=str(want / "docker-compose.yml"),
    dest=f"{STACK}/docker-compose.yml",
    user="ronny",
    group="ronny",
    mode="644",
)
files.put(
    name="The stack's .env (holds a secret, compared by checksum)",
    src=str(want / "env"),
    dest=f"{STACK}/.env",
    user="ronny",
    group="ronny",
    mode="600",
)
files.file(
    name="The cron job's script is there and executable",
    path=f"{STACK}/scripts/pg-dump.sh",
    user="ronny",
    mode="755",
)

crontab = (want / "crontab").read_text()
if read("crontab -l").strip() != crontab.strip():
    b64 = base64.b64encode(crontab.encode()).decode()
    server.shell(
        name="The login user's crontab holds the managed block",
        commands=[f"printf %s {b64} | base64 -d | crontab -"],
    )

tables = read("cat /var/spool/cron/crontabs/* /etc/crontab /etc/cron.d/* 2>/dev/null || true", sudo=True)
if LEGACY_ROOT in tables:
    server.shell(
        name="No cron table runs a job under a legacy root",
        commands=[f"echo 'remove the jobs under {LEGACY_ROOT}'"],
        _sudo=True,
    )

status = json.loads(read("tailscale status --json"))
prefs = json.loads(read("tailscale debug prefs", sudo=True))
if status["Self"]["HostName"] != host.name or prefs["CorpDNS"]:
    server.shell(
        name="Tailscale name and accept-dns",
        commands=[f"tailscale set --hostname={shlex.quote(host.name)} --accept-dns=false"],
        _sudo=True,
    )

ps = read(
    f"cd {STACK} && docker compose -p immich ps -a"
    " --format '{{.Service}} {{.Image}}|{{.State}}|{{.Health}}'"
).splitlines()
running = sorted(line.split("|", 1)[0] for line in ps)
wanted = sorted((want / "containers").read_text().splitlines())
if running != wanted or any(not re.search(r"\|running\|(healthy)?$", line) for line in ps):
    server.shell(
        name="The stack's containers run their images, healthy",
        commands=[f"cd {STACK} && docker compose up -d --wait"],
    )

others = [
    line
    for line in read(
        "docker ps -a --format '{{.Names}}|{{.Label \"com.docker.compose.project\"}}'"
    ).splitlines()
    if not line.endswith("|immich")
]
if others:
    server.shell(
        name="No other container beside the stack",
        commands=["docker rm -f " + " ".join(shlex.quote(o.split("|")[0]) for o in others)],
    )

print(f"spine-bench: {host.name} read", flush=True)
