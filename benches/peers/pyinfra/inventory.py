"""The plan bench's test hosts for pyinfra: read from the JSON file the bench
writes (`SPINE_BENCH_FLEET`: id, address, client key per host, the
known_hosts file by address, the folder of desired files). Host keys are
checked strictly, as spine and the ssh floor do."""

import json
import os

with open(os.environ["SPINE_BENCH_FLEET"]) as f:
    _fleet = json.load(f)

fleet = [
    (
        h["id"],
        {
            "ssh_hostname": h["addr"],
            "ssh_user": "ronny",
            "ssh_key": h["key"],
            "ssh_known_hosts_file": _fleet["known_hosts"],
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
            "desired_dir": _fleet["desired_dir"],
        },
    )
    for h in _fleet["hosts"]
]
