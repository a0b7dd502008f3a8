//! What netplan makes of the files it reads: which files it reads (the
//! shadowing rules of netplan-generate(8)), which definitions in them
//! configure the managed interface, and the addresses and default routes
//! they give it. Only structure is kept, never file text (a wifi password
//! may live in a netplan file).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::gather::script::Section;

/// The directories netplan reads, least important first.
pub const DIRS: &[&str] = &["/lib/netplan", "/etc/netplan", "/run/netplan"];

/// One file netplan reads.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: String,
    /// The parsed YAML, or why it could not be parsed.
    pub meaning: Result<Value, String>,
}

/// The managed interface: its name and (when the registry gives it) MAC.
#[derive(Debug, Clone, Copy)]
pub struct Iface<'a> {
    pub name: &'a str,
    pub mac: &'a str,
}

/// A plausible path of a file netplan reads: in one of [`DIRS`], a plain
/// `NAME.yaml` (the read script's glob finds nothing else; anything else is
/// refused, so a host's answer cannot steer a removal elsewhere).
pub fn plausible(path: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    DIRS.contains(&dir)
        && name.ends_with(".yaml")
        && name.len() > ".yaml".len()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

/// Every file in the section (`n.*` keys) netplan reads, in the order it
/// reads them (by file name), shadowed files left out. `Err` when the host
/// could not read one.
pub fn files(s: &Section) -> Result<Vec<File>, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    let count: usize = s
        .get("n.count")
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| "the host did not list its netplan files".to_string())?;
    // By file name: the most important directory wins.
    let mut by_name: BTreeMap<String, (usize, File)> = BTreeMap::new();
    for i in 1..=count {
        let key = format!("n.{i}");
        let path = s
            .get(&format!("{key}.path"))
            .unwrap_or_default()
            .to_string();
        if !plausible(&path) {
            return Err(format!(
                "the host listed `{}` as a netplan file",
                crate::safe::shown(&path)
            ));
        }
        let Some((text, _, _)) = super::super::file::observed(s, &key)? else {
            continue;
        };
        let (dir, name) = path.rsplit_once('/').unwrap_or_default();
        let rank = DIRS.iter().position(|d| *d == dir).unwrap_or_default();
        let file = File {
            meaning: super::super::file::yaml_meaning(&text),
            path: path.clone(),
        };
        match by_name.get(name) {
            Some((r, _)) if *r > rank => {}
            _ => {
                by_name.insert(name.to_string(), (rank, file));
            }
        }
    }
    Ok(by_name.into_values().map(|(_, f)| f).collect())
}

/// The netplan device types whose definitions can configure an interface.
const TYPES: &[&str] = &[
    "ethernets",
    "wifis",
    "bonds",
    "bridges",
    "vlans",
    "tunnels",
    "vrfs",
    "modems",
    "dummy-devices",
    "virtual-ethernets",
    "nm-devices",
];

/// Whether `pattern` (a netplan `match: name:` glob) matches `name`.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Why the definition `id` (of a device type) configures the interface,
/// if it does.
fn selects(id: &str, def: &Value, iface: Iface) -> Option<String> {
    if def["set-name"].as_str() == Some(iface.name) {
        return Some(format!(
            "`{id}` renames a device to {} (set-name)",
            iface.name
        ));
    }
    let Some(m) = def.get("match").and_then(Value::as_object) else {
        return (id == iface.name).then(|| format!("configures {}", iface.name));
    };
    if let Some(mac) = m.get("macaddress").and_then(Value::as_str) {
        return (!iface.mac.is_empty() && mac.eq_ignore_ascii_case(iface.mac))
            .then(|| format!("`{id}` matches {}'s MAC {}", iface.name, iface.mac));
    }
    if let Some(name) = m.get("name").and_then(Value::as_str) {
        return glob(name, iface.name)
            .then(|| format!("`{id}` matches {} by name (`{name}`)", iface.name));
    }
    m.get("driver").map(|_| {
        format!(
            "`{id}` matches devices by driver, {} among them perhaps",
            iface.name
        )
    })
}

/// Why a parsed netplan file configures the interface: one reason per
/// definition that selects it, or a bond or bridge that takes it in.
pub fn touches(meaning: &Value, iface: Iface) -> Vec<String> {
    let mut why = Vec::new();
    let mut ids: Vec<String> = vec![iface.name.to_string()];
    for (id, def) in definitions(meaning, TYPES) {
        if let Some(w) = selects(&id, def, iface) {
            why.push(w);
            ids.push(id);
        }
    }
    for (id, def) in definitions(meaning, &["bonds", "bridges"]) {
        let takes = def["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|m| ids.iter().any(|i| i == m));
        if let Some(m) = takes {
            why.push(format!("`{id}` takes {m} in (interfaces)"));
        }
    }
    why.sort();
    why.dedup();
    why
}

/// `(id, definition)` of every definition of the given device types.
fn definitions<'a>(meaning: &'a Value, types: &[&str]) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for t in types {
        if let Some(m) = meaning["network"][*t].as_object() {
            out.extend(m.iter().map(|(id, def)| (id.clone(), def)));
        }
    }
    out
}

/// Netplan's merge of the files it reads, in order: mappings merged key by
/// key, sequences appended, anything else replaced by the later file.
pub fn merge(into: &mut Value, later: &Value) {
    match (into, later) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(x) => merge(x, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b.iter().cloned()),
        (a, b) => *a = b.clone(),
    }
}

/// The addresses and default gateways a netplan configuration gives the
/// interface (every definition that selects it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Effective {
    pub addresses: Vec<String>,
    pub gateways: Vec<String>,
}

pub fn effective(meaning: &Value, iface: Iface) -> Effective {
    let mut e = Effective::default();
    for (id, def) in definitions(meaning, TYPES) {
        if selects(&id, def, iface).is_none() {
            continue;
        }
        for a in def["addresses"].as_array().into_iter().flatten() {
            match a {
                Value::String(s) => e.addresses.push(s.clone()),
                Value::Object(m) => e.addresses.extend(m.keys().cloned()),
                _ => {}
            }
        }
        for r in def["routes"].as_array().into_iter().flatten() {
            let to = r["to"].as_str().unwrap_or_default();
            if matches!(to, "default" | "0.0.0.0/0" | "::/0")
                && let Some(via) = r["via"].as_str()
            {
                e.gateways.push(via.to_string());
            }
        }
        for k in ["gateway4", "gateway6"] {
            if let Some(g) = def[k].as_str() {
                e.gateways.push(g.to_string());
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(t: &str) -> Value {
        super::super::super::file::yaml_meaning(t).unwrap()
    }

    const ETH0: Iface = Iface {
        name: "eth0",
        mac: "52:54:00:12:02:30",
    };

    #[test]
    fn which_files_are_read() {
        let mut s = Section::default();
        let put = |s: &mut Section, i: usize, path: &str, text: &str| {
            s.values.insert(format!("n.{i}.path"), path.into());
            s.values.insert(format!("n.{i}.exists"), "1".into());
            s.values.insert(format!("n.{i}.content"), text.into());
        };
        put(
            &mut s,
            1,
            "/lib/netplan/10-a.yaml",
            "network: {version: 2}\n",
        );
        put(
            &mut s,
            2,
            "/lib/netplan/50-b.yaml",
            "network: {version: 2}\n",
        );
        put(
            &mut s,
            3,
            "/etc/netplan/50-b.yaml",
            "network: {version: 2}\n",
        );
        put(&mut s, 4, "/etc/netplan/00-c.yaml", "network: [\n");
        put(
            &mut s,
            5,
            "/run/netplan/50-b.yaml",
            "network: {version: 2}\n",
        );
        s.values.insert("n.count".into(), "5".into());
        let got = files(&s).unwrap();
        let paths: Vec<&str> = got.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/netplan/00-c.yaml",
                "/lib/netplan/10-a.yaml",
                "/run/netplan/50-b.yaml"
            ]
        );
        assert!(got[0].meaning.is_err());
        // A path outside netplan's directories is refused, not removed later.
        s.values.insert("n.5.path".into(), "/etc/passwd".into());
        assert!(files(&s).unwrap_err().contains("/etc/passwd"));
        assert!(!plausible("/etc/netplan/../x.yaml"));
        assert!(!plausible("/etc/netplan/sub/x.yaml"));
        assert!(!plausible("/etc/netplan/.yaml"));
    }

    #[test]
    fn what_touches_the_interface() {
        let by_name = yaml("network:\n  ethernets:\n    eth0:\n      addresses: [10.0.0.5/24]\n");
        assert_eq!(touches(&by_name, ETH0), ["configures eth0"]);
        let by_mac = yaml(
            "network:\n  ethernets:\n    id0:\n      match: {macaddress: '52:54:00:12:02:30'}\n      dhcp4: true\n",
        );
        assert!(touches(&by_mac, ETH0)[0].contains("matches eth0's MAC"));
        let by_glob = yaml("network:\n  ethernets:\n    all:\n      match: {name: 'e*'}\n");
        assert!(touches(&by_glob, ETH0)[0].contains("by name (`e*`)"));
        let other = yaml(
            "network:\n  ethernets:\n    eth1: {dhcp4: true}\n    id1:\n      match: {macaddress: '52:54:00:00:00:01'}\n",
        );
        assert!(touches(&other, ETH0).is_empty());
        let bridge = yaml(
            "network:\n  ethernets:\n    eth0: {}\n  bridges:\n    br0:\n      interfaces: [eth0]\n      addresses: [10.0.0.9/24]\n",
        );
        let why = touches(&bridge, ETH0);
        assert!(
            why.iter().any(|w| w.contains("`br0` takes eth0 in")),
            "{why:?}"
        );
        let renamed = yaml(
            "network:\n  ethernets:\n    nic:\n      match: {name: ens18}\n      set-name: eth0\n",
        );
        assert!(touches(&renamed, ETH0)[0].contains("set-name"));
    }

    #[test]
    fn merged_as_netplan_merges() {
        let mut a = yaml(
            "network:\n  ethernets:\n    eth0:\n      addresses: [10.203.12.230/24]\n      routes: [{to: default, via: 10.203.12.1}]\n",
        );
        let b = yaml(
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [10.203.1.203/24]\n      match: {macaddress: '52:54:00:12:02:30'}\n      routes: [{to: default, via: 10.203.1.1}]\n",
        );
        merge(&mut a, &b);
        let e = effective(&a, ETH0);
        assert_eq!(e.addresses, ["10.203.12.230/24", "10.203.1.203/24"]);
        assert_eq!(e.gateways, ["10.203.12.1", "10.203.1.1"]);
        let old = yaml(
            "network:\n  ethernets:\n    eth0:\n      addresses:\n        - 10.0.0.1/24: {label: x}\n      gateway4: 10.0.0.254\n",
        );
        let e = effective(&old, ETH0);
        assert_eq!(
            (e.addresses, e.gateways),
            (
                vec!["10.0.0.1/24".to_string()],
                vec!["10.0.0.254".to_string()]
            )
        );
    }
}
