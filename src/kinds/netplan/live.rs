//! The managed interface as it is live: its addresses and default routes
//! (`ip -j`) against the registry's, and what netplan makes of the files on
//! disk (`netplan get all`, or the files merged as netplan merges them).
//! A configuration right on disk but not applied is drift of its own;
//! applying it is an activation (`netplan apply`) under the confirmed
//! lifecycle, together with the netplan file changes of the same run.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Interface;
use super::config::{self, Effective};
use crate::gather::script::Section;
use crate::kinds::{Action, Verdict, text_diff};

/// The managed interface as it is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    /// It is there: its global addresses of the registry address's family
    /// and its default gateways (each sorted), and what the files on disk
    /// give it.
    Up {
        addresses: Vec<String>,
        gateways: Vec<String>,
        disk: Disk,
    },
    /// There is no such interface: what `ip` said.
    Missing { why: String },
}

/// What netplan makes of the files on disk for the interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Disk {
    Known(Effective),
    /// Why it is not known.
    Unknown {
        unknown: String,
    },
}

/// Address family of the registry's address: `inet` or `inet6`.
fn family(interface: &Interface) -> &'static str {
    if interface.address.contains(':') {
        "inet6"
    } else {
        "inet"
    }
}

/// `ip -4`/`ip -6` for the registry's address.
pub fn ip_family(address: &str) -> &'static str {
    if address.contains(':') { "-6" } else { "-4" }
}

pub fn observe(interface: &Interface, s: &Section) -> Result<Facts, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    if let Some(e) = s.get("addr.error") {
        return Ok(Facts::Missing {
            why: e.trim().to_string(),
        });
    }
    let parse = |key: &str| -> Result<Value, String> {
        if let Some(e) = s.get(&format!("{key}.error")) {
            return Err(format!("`ip` failed: {}", e.trim()));
        }
        let text = s
            .get(key)
            .ok_or_else(|| format!("the host gave no `{key}`"))?;
        serde_json::from_str(if text.trim().is_empty() { "[]" } else { text })
            .map_err(|e| format!("`ip -j` printed what is not JSON: {e}"))
    };
    let links = parse("addr")?;
    let mut addresses: Vec<String> = links
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["family"] == family(interface) && a["scope"] == "global")
        .filter_map(|a| {
            Some(format!(
                "{}/{}",
                a["local"].as_str()?,
                a["prefixlen"].as_u64()?
            ))
        })
        .collect();
    addresses.sort();
    let mut gateways: Vec<String> = parse("routes")?
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["dev"].as_str() == Some(interface.name.as_str()))
        .filter_map(|r| r["gateway"].as_str().map(str::to_string))
        .collect();
    gateways.sort();
    let disk = match on_disk(interface, s) {
        Ok(e) => Disk::Known(e),
        Err(unknown) => Disk::Unknown { unknown },
    };
    Ok(Facts::Up {
        addresses,
        gateways,
        disk,
    })
}

/// What netplan makes of the files for the interface: `netplan get all`
/// when the host's netplan has it, else the files merged here.
fn on_disk(interface: &Interface, s: &Section) -> Result<Effective, String> {
    if let Some(text) = s.get("effective") {
        let meaning = crate::kinds::file::yaml_meaning(text)
            .map_err(|e| format!("`netplan get all` printed what is not YAML: {e}"))?;
        return Ok(config::effective(&meaning, interface.iface()));
    }
    let mut merged = Value::Null;
    for f in config::files(s)? {
        let m = f
            .meaning
            .map_err(|e| format!("{} is not valid YAML: {e}", f.path))?;
        if merged.is_null() {
            merged = m;
        } else {
            config::merge(&mut merged, &m);
        }
    }
    Ok(config::effective(&merged, interface.iface()))
}

/// Two `ADDRESS/PREFIX` strings name the same address.
fn same(a: &str, b: &str) -> bool {
    let split = |s: &str| {
        let (ip, p) = s.split_once('/').unwrap_or((s, ""));
        (ip.parse::<IpAddr>().ok(), p.to_string())
    };
    let (x, y) = (split(a), split(b));
    x.0.is_some() && x == y
}

/// How the live interface differs from the registry, one phrase each.
fn differences(
    interface: &Interface,
    gw: &str,
    addresses: &[String],
    gateways: &[String],
) -> Vec<String> {
    let (name, want) = (&interface.name, &interface.address);
    let mut out = Vec::new();
    if !addresses.iter().any(|a| same(a, want)) {
        out.push(format!("{name} does not have {want}"));
    }
    for a in addresses.iter().filter(|a| !same(a, want)) {
        out.push(format!("{name} also has {a}"));
    }
    if !gateways.iter().any(|g| g == gw) {
        out.push(format!("no default route via {gw} on {name}"));
    }
    for g in gateways.iter().filter(|g| *g != gw) {
        out.push(format!("a default route via {g} on {name}"));
    }
    out
}

fn lines(addresses: &[String], gateways: &[String]) -> String {
    let mut s: String = addresses.iter().map(|a| format!("address {a}\n")).collect();
    s.extend(gateways.iter().map(|g| format!("default via {g}\n")));
    s
}

pub fn compare(interface: &Interface, gateway: &str, actual: &Facts) -> Verdict {
    let name = &interface.name;
    let want = lines(
        std::slice::from_ref(&interface.address),
        &[gateway.to_string()],
    );
    let what = format!("{name} (live)");
    let (addresses, gateways, disk) = match actual {
        Facts::Missing { why } => {
            return Verdict::Drift {
                action: Action::Change,
                reason: format!(
                    "there is no interface {name} on the host ({why}): apply activates the netplan files"
                ),
                diff: text_diff(&what, "", &want),
            };
        }
        Facts::Up {
            addresses,
            gateways,
            disk,
        } => (addresses, gateways, disk),
    };
    let diffs = differences(interface, gateway, addresses, gateways);
    if diffs.is_empty() {
        return Verdict::InSync;
    }
    let reason = match disk {
        Disk::Unknown { unknown: why } => format!(
            "live network differs: {}; what netplan makes of the files on disk is unknown ({why})",
            diffs.join(", ")
        ),
        Disk::Known(e) if differences(interface, gateway, &e.addresses, &e.gateways).is_empty() => {
            format!(
                "right on disk but not applied: {} (apply activates the netplan files: netplan apply)",
                diffs.join(", ")
            )
        }
        Disk::Known(e) => format!(
            "live network differs: {}; the netplan files on disk give {name} {} (their changes in this plan are activated together with this one)",
            diffs.join(", "),
            lines(&e.addresses, &e.gateways)
                .trim_end()
                .replace('\n', ", ")
        ),
    };
    Verdict::Drift {
        action: Action::Change,
        reason,
        diff: text_diff(&what, &lines(addresses, gateways), &want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            kind: crate::model::LinkKind::Ethernet,
            address: "10.203.1.203/24".into(),
            mac: None,
        }
    }

    fn observe(s: &Section) -> Result<Facts, String> {
        super::observe(&eth0(), s)
    }

    fn compare(f: &Facts) -> Verdict {
        super::compare(&eth0(), "10.203.1.1", f)
    }

    fn section(addr: &str, gw: &str, effective: &str) -> Section {
        let mut s = Section::default();
        s.values.insert(
            "addr".into(),
            format!(
                r#"[{{"ifindex":2,"ifname":"eth0","addr_info":[{{"family":"inet","local":"{addr}","prefixlen":24,"scope":"global"}},{{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}}]}}]"#
            ),
        );
        s.values.insert(
            "routes".into(),
            format!(r#"[{{"dst":"default","gateway":"{gw}","dev":"eth0","protocol":"static","flags":[]}}]"#),
        );
        s.values.insert("effective".into(), effective.into());
        s
    }

    const RIGHT: &str = "network:\n  ethernets:\n    eth0:\n      addresses: [\"10.203.1.203/24\"]\n      routes: [{to: default, via: 10.203.1.1}]\n";

    #[test]
    fn right_on_disk_but_not_applied() {
        let got = observe(&section("10.203.12.230", "10.203.12.1", RIGHT)).unwrap();
        match compare(&got) {
            Verdict::Drift {
                action,
                reason,
                diff,
            } => {
                assert_eq!(action, Action::Change);
                assert_eq!(
                    reason,
                    "right on disk but not applied: eth0 does not have 10.203.1.203/24, eth0 also has 10.203.12.230/24, no default route via 10.203.1.1 on eth0, a default route via 10.203.12.1 on eth0 (apply activates the netplan files: netplan apply)"
                );
                assert!(diff.unwrap().contains("+address 10.203.1.203/24"));
            }
            v => panic!("{v:?}"),
        }
        let live = observe(&section("10.203.1.203", "10.203.1.1", RIGHT)).unwrap();
        assert_eq!(compare(&live), Verdict::InSync);
    }

    #[test]
    fn wrong_on_disk_too_and_missing_interface() {
        let old = "network:\n  ethernets:\n    eth0:\n      addresses: [10.203.12.230/24]\n";
        let got = observe(&section("10.203.12.230", "10.203.1.1", old)).unwrap();
        let Verdict::Drift { reason, .. } = compare(&got) else {
            panic!()
        };
        assert!(
            reason.starts_with("live network differs: eth0 does not have 10.203.1.203/24")
                && reason.contains("the netplan files on disk give eth0 address 10.203.12.230/24"),
            "{reason}"
        );
        let mut s = Section::default();
        s.values.insert(
            "addr.error".into(),
            "Device \"eth0\" does not exist.".into(),
        );
        let got = observe(&s).unwrap();
        let Verdict::Drift { reason, .. } = compare(&got) else {
            panic!()
        };
        assert!(reason.contains("there is no interface eth0"), "{reason}");
    }

    #[test]
    fn without_netplan_get_the_files_are_merged_here() {
        let mut s = section("10.203.12.230", "10.203.12.1", "");
        s.values.remove("effective");
        for (i, (p, t)) in [
            ("/etc/netplan/50-cloud-init.yaml", RIGHT),
            (
                "/etc/netplan/00-installer-config.yaml",
                "network:\n  ethernets:\n    eth0:\n      addresses: [10.203.12.230/24]\n",
            ),
        ]
        .iter()
        .enumerate()
        {
            s.values.insert(format!("n.{}.path", i + 1), p.to_string());
            s.values.insert(format!("n.{}.exists", i + 1), "1".into());
            s.values
                .insert(format!("n.{}.content", i + 1), t.to_string());
        }
        s.values.insert("n.count".into(), "2".into());
        let got = observe(&s).unwrap();
        let Facts::Up {
            disk: Disk::Known(e),
            ..
        } = got
        else {
            panic!("{got:?}")
        };
        assert_eq!(e.addresses, ["10.203.12.230/24", "10.203.1.203/24"]);
    }
}
