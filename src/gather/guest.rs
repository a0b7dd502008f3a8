//! What a VM's guest agent (`qm guest`) and other commands answered, read
//! the same way by the plan's cloudinit read, doctor and the restart stage.

/// `ADDR/PREFIX` of every IPv4 address in a guest agent
/// `network-get-interfaces` answer, loopback and container bridges left out.
pub fn agent_ipv4(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            // Loopback and the bridges of docker and friends are not the VM's LAN.
            let name = i["name"].as_str().unwrap_or_default();
            name != "lo"
                && !["docker", "br-", "veth", "tailscale", "virbr"]
                    .iter()
                    .any(|p| name.starts_with(p))
        })
        .flat_map(|i| i["ip-addresses"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["ip-address-type"] == "ipv4")
        .filter_map(|a| Some(format!("{}/{}", a["ip-address"].as_str()?, a["prefix"])))
        .collect()
}

/// The last non-empty line of a command's output (its error, usually).
pub fn last(out: &str) -> String {
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .to_string()
}
