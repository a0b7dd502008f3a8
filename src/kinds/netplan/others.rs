//! The netplan files beside the managed one that configure the managed
//! interface too. netplan merges every file it reads (Ubuntu's installer
//! leaves `00-installer-config.yaml` beside cloud-init's file), so such a
//! file puts its addresses and routes on the interface whatever the managed
//! file says: each is planned for removal (a first-class `remove`), kept in
//! the run's backup, and removed, activated and rolled back together with
//! any other network change of the run.

use serde::{Deserialize, Serialize};

use super::Interface;
use super::config;
use crate::gather::script::Section;
use crate::kinds::{KindError, Verdict};
use crate::shell::{self, Script, ScriptError};

/// The files beside the managed one that configure the interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub extra: Vec<Extra>,
}

/// One file netplan reads beside the managed one, and why it is in the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    pub path: String,
    pub why: String,
}

/// The files netplan reads, other than the `managed` one, that configure
/// the interface or shadow the managed file, each with why.
pub fn observe(interface: &Interface, managed: &str, s: &Section) -> Result<Facts, String> {
    let managed_name = managed.rsplit('/').next().unwrap_or_default();
    let mut extra = Vec::new();
    for f in config::files(s)? {
        if f.path == managed {
            continue;
        }
        let mut why = Vec::new();
        if f.path.rsplit('/').next() == Some(managed_name) {
            why.push(format!(
                "shadows {managed} (netplan reads this file instead)"
            ));
        }
        match &f.meaning {
            Ok(m) => why.extend(config::touches(m, interface.iface())),
            Err(e) => {
                return Err(format!(
                    "{} is not valid YAML ({e}): netplan refuses every file while it is there; fix or remove it by hand",
                    f.path
                ));
            }
        }
        if !why.is_empty() {
            extra.push(Extra {
                path: f.path,
                why: why.join("; "),
            });
        }
    }
    Ok(Facts { extra })
}

pub fn compare(interface: &Interface, managed: &str, actual: &Facts) -> Verdict {
    let iface = &interface.name;
    let extra: Vec<(String, String)> = actual
        .extra
        .iter()
        .map(|e| (e.path.clone(), e.why.clone()))
        .collect();
    crate::kinds::removal_of(
        &extra,
        "",
        &format!("netplan files configuring {iface} beside {managed}"),
        &format!(
            " (netplan merges every file it reads into {iface}'s configuration; apply removes the file, kept in the run's backup, and activates the network with rollback)"
        ),
    )
}

/// Remove the files seen at apply time (each backed up first); the paths
/// are the host's answer, so each must be one netplan reads.
pub fn remove(actual: &Facts) -> Result<(Script, Vec<String>), KindError> {
    let paths: Vec<String> = actual.extra.iter().map(|e| e.path.clone()).collect();
    if let Some(bad) = paths.iter().find(|p| !config::plausible(p)) {
        return Err(KindError::Refused(format!(
            "`{}` is not a netplan file",
            crate::safe::shown(bad)
        )));
    }
    let script: Result<Script, ScriptError> = shell::render(
        "kinds/file/remove.sh",
        minijinja::context! { paths => paths.clone() },
    );
    Ok((script?, paths))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Action;

    const MANAGED: &str = "/etc/netplan/50-cloud-init.yaml";

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            kind: crate::model::LinkKind::Ethernet,
            address: "10.203.1.203/24".into(),
            mac: Some("52:54:00:12:02:30".into()),
        }
    }

    fn observe(s: &Section) -> Result<Facts, String> {
        super::observe(&eth0(), MANAGED, s)
    }

    fn compare(f: &Facts) -> Verdict {
        super::compare(&eth0(), MANAGED, f)
    }

    fn paths(f: &Facts) -> Vec<&str> {
        f.extra.iter().map(|e| e.path.as_str()).collect()
    }

    fn section(files: &[(&str, &str)]) -> Section {
        let mut s = Section::default();
        for (i, (path, text)) in files.iter().enumerate() {
            s.values
                .insert(format!("n.{}.path", i + 1), path.to_string());
            s.values.insert(format!("n.{}.exists", i + 1), "1".into());
            s.values
                .insert(format!("n.{}.content", i + 1), text.to_string());
        }
        s.values.insert("n.count".into(), files.len().to_string());
        s
    }

    #[test]
    fn the_installer_file_is_planned_for_removal_and_others_are_left() {
        let s = section(&[
            (
                "/etc/netplan/00-installer-config.yaml",
                "network:\n  ethernets:\n    eth0:\n      addresses: [10.203.12.230/24]\n  version: 2\n",
            ),
            (
                "/etc/netplan/50-cloud-init.yaml",
                "network:\n  ethernets:\n    eth0: {addresses: [10.203.1.203/24]}\n",
            ),
            (
                "/etc/netplan/60-eth1.yaml",
                "network:\n  ethernets:\n    eth1: {dhcp4: true}\n",
            ),
            (
                "/run/netplan/50-cloud-init.yaml",
                "network:\n  version: 2\n",
            ),
        ]);
        let got = observe(&s).unwrap();
        assert_eq!(
            paths(&got),
            [
                "/etc/netplan/00-installer-config.yaml",
                "/run/netplan/50-cloud-init.yaml"
            ]
        );
        match compare(&got) {
            Verdict::Drift { action, reason, .. } => {
                assert_eq!(action, Action::Remove);
                assert!(
                    reason.contains("/etc/netplan/00-installer-config.yaml: configures eth0")
                        && reason.contains("shadows /etc/netplan/50-cloud-init.yaml"),
                    "{reason}"
                );
            }
            v => panic!("{v:?}"),
        }
        let (script, files) = remove(&got).unwrap();
        assert_eq!(files.len(), 2);
        assert!(
            script
                .as_str()
                .contains("sp_backup '/etc/netplan/00-installer-config.yaml'")
        );
        // Nothing else: in sync.
        let s = section(&[(
            "/etc/netplan/50-cloud-init.yaml",
            "network:\n  ethernets:\n    eth0: {addresses: [10.203.1.203/24]}\n",
        )]);
        assert_eq!(compare(&observe(&s).unwrap()), Verdict::InSync);
        // A broken file: unknown, never in sync.
        let s = section(&[("/etc/netplan/01-x.yaml", "network: [\n")]);
        assert!(
            observe(&s)
                .unwrap_err()
                .contains("01-x.yaml is not valid YAML")
        );
        // A removal never leaves netplan's directories.
        let forged = Facts {
            extra: vec![Extra {
                path: "/etc/passwd".into(),
                why: "x".into(),
            }],
        };
        assert!(remove(&forged).is_err());
    }
}
