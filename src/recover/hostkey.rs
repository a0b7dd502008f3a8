//! A restarted VM's new SSH host key (cloud-init regenerates the keys on a
//! new instance). Learned only over a channel that is already trusted: the
//! guest agent, through the Proxmox host whose key is pinned. Otherwise the
//! run stops and shows the fingerprint for the operator to check.

use std::path::PathBuf;
use std::process::Command;

use openssh::Session;

use crate::apply::remote::{RootRun, run_root};
use crate::gather::ssh::{Route, SshOptions};
use crate::shell;

/// Read the guest's ed25519 host key through the guest agent, then replace
/// the route's known_hosts entry with it. Err says why not, with the
/// fingerprint the VM now offers.
pub async fn learn(
    pve: &Session,
    pve_user: &str,
    vmid: &str,
    route: &Route,
    opts: &SshOptions,
) -> Result<String, String> {
    let script = shell::render("recover/host-key.sh", minijinja::context! { vmid })
        .map_err(|e| e.to_string())?;
    let run = RootRun {
        run_id: None,
        wait_timeout: None,
    };
    let key = match run_root(pve, pve_user, run, &script).await {
        Ok((out, 0)) => parse_agent_key(&out),
        Ok((out, code)) => Err(format!(
            "the guest agent could not read the key (exit {code}): {}",
            out.trim()
        )),
        Err(e) => Err(e.to_string()),
    };
    let key = key.map_err(|why| refuse(vmid, route, opts, &why))?;
    let (file, alias) =
        known_hosts_of(route, opts).map_err(|why| refuse(vmid, route, opts, &why))?;
    replace(&file, &alias, &key).map_err(|why| refuse(vmid, route, opts, &why))?;
    Ok(format!(
        "learned VM {vmid}'s new SSH host key through the guest agent on its Proxmox host ({}) and replaced `{alias}` in {}",
        fingerprint_of_key(&key).unwrap_or_else(|| key.clone()),
        file.display()
    ))
}

/// The message when the key cannot be learned over a trusted channel.
fn refuse(vmid: &str, route: &Route, opts: &SshOptions, why: &str) -> String {
    let offered = scan(route, opts).unwrap_or_else(|e| format!("(could not read it: {e})"));
    format!(
        "VM {vmid} came back with a new SSH host key (cloud-init made new keys for the new instance), \
         and spine could not learn it over a trusted channel: {why}. It now offers {offered}. \
         Check it on the VM's console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), \
         replace the old entry in your known_hosts (`ssh-keygen -R HOST`, then add the new key), \
         and run `spine apply` again; spine never accepts a changed key by itself"
    )
}

/// The `ssh-ed25519 AAAA...` line from `qm guest exec` JSON output.
pub fn parse_agent_key(out: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .map_err(|e| format!("unexpected `qm guest exec` output ({e}): {}", out.trim()))?;
    if v["exitcode"].as_i64() != Some(0) {
        return Err(format!(
            "reading /etc/ssh/ssh_host_ed25519_key.pub in the guest failed: {}",
            v["err-data"].as_str().unwrap_or("(no message)").trim()
        ));
    }
    let data = v["out-data"].as_str().unwrap_or_default();
    let mut words = data.split_whitespace();
    match (words.next(), words.next()) {
        (Some(t @ "ssh-ed25519"), Some(k))
            if k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
        {
            Ok(format!("{t} {k}"))
        }
        _ => Err(format!(
            "the guest's key file does not hold an ed25519 key: {}",
            data.trim()
        )),
    }
}

/// Which known_hosts file and name ssh checks for this route (`ssh -G`).
fn known_hosts_of(route: &Route, opts: &SshOptions) -> Result<(PathBuf, String), String> {
    let mut c = Command::new("ssh");
    c.arg("-G");
    if let Some(cfg) = &opts.config {
        c.arg("-F").arg(cfg);
    }
    c.args(["-l", &route.user]);
    if let Some(p) = route.port {
        c.args(["-p", &p.to_string()]);
    }
    c.arg(&route.address);
    let out = c.output().map_err(|e| format!("ssh -G: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
            .map(str::to_string)
    };
    let file = get("userknownhostsfile")
        .and_then(|f| f.split_whitespace().next().map(str::to_string))
        .ok_or("ssh -G names no known_hosts file")?;
    let file = match file.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
        None => PathBuf::from(file),
    };
    let port = get("port").unwrap_or_else(|| "22".into());
    let alias = get("hostkeyalias").unwrap_or_else(|| {
        let host = get("hostname").unwrap_or_else(|| route.address.clone());
        if port == "22" {
            host
        } else {
            format!("[{host}]:{port}")
        }
    });
    Ok((file, alias))
}

/// Drop `alias`'s old entries from `file` and add `alias key`.
fn replace(file: &std::path::Path, alias: &str, key: &str) -> Result<(), String> {
    if file.exists() {
        let out = Command::new("ssh-keygen")
            .arg("-R")
            .arg(alias)
            .arg("-f")
            .arg(file)
            .output()
            .map_err(|e| format!("ssh-keygen -R: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ssh-keygen -R {alias} -f {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    writeln!(f, "{alias} {key}").map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// `SHA256:...` of a public key line.
fn fingerprint_of_key(key: &str) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(format!("{key}\n").as_bytes())
        .ok()?;
    let out = child.wait_with_output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(|fp| format!("ed25519 {fp}"))
}

/// The fingerprint the route's host offers now (ssh-keyscan; shown, never trusted).
fn scan(route: &Route, opts: &SshOptions) -> Result<String, String> {
    if route.jump.is_some() {
        return Err("the path goes through a jump host".into());
    }
    let out = Command::new("ssh-keyscan")
        .args([
            "-T",
            &opts.connect_timeout.as_secs().max(1).to_string(),
            "-t",
            "ed25519",
        ])
        .args(["-p", &route.port.unwrap_or(22).to_string()])
        .arg(&route.address)
        .output()
        .map_err(|e| format!("ssh-keyscan: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .ok_or("no key offered")?;
    let key: Vec<&str> = line.split_whitespace().skip(1).take(2).collect();
    fingerprint_of_key(&key.join(" ")).ok_or_else(|| "unreadable key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_key_from_guest_exec_json() {
        let out =
            r#"{"exitcode": 0, "exited": 1, "out-data": "ssh-ed25519 AAAAC3Nza+/= host-key@vm\n"}"#;
        assert_eq!(parse_agent_key(out).unwrap(), "ssh-ed25519 AAAAC3Nza+/=");
        let bad = r#"{"exitcode": 1, "exited": 1, "err-data": "cat: no such file"}"#;
        assert!(parse_agent_key(bad).unwrap_err().contains("no such file"));
        let evil = r#"{"exitcode": 0, "exited": 1, "out-data": "ssh-ed25519 AAAA\nevil.example ssh-rsa X"}"#;
        assert_eq!(parse_agent_key(evil).unwrap(), "ssh-ed25519 AAAA");
        let injected = r#"{"exitcode": 0, "out-data": "ssh-ed25519 AA;rm"}"#;
        assert!(parse_agent_key(injected).is_err());
        assert!(parse_agent_key("QEMU guest agent is not running").is_err());
    }
}
