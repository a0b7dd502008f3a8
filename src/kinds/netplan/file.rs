//! The managed netplan file, in the shape cloud-init writes it: compared by
//! meaning (parsed YAML), mode and owner; written whole.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gather::script::Section;
use crate::kinds::{Desired, Verdict, file};

/// The managed file as read: the file, and what its text means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(flatten)]
    pub file: file::FileFacts,
    /// The parsed YAML, or a string saying why the text is not YAML (absent
    /// with the file); plans keep only its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<Value>,
}

pub fn observe(s: &Section) -> Result<Facts, String> {
    let file = file::FileFacts::observe(s, "f")?;
    let meaning = file.exists.then(|| file::meaning_of(&file.text));
    Ok(Facts { file, meaning })
}

pub fn compare(d: &Desired, actual: &Facts) -> Verdict {
    let seen = actual.file.exists.then(|| file::YamlSeen {
        text: &actual.file.text,
        meaning: actual.meaning.as_ref().unwrap_or(&Value::Null),
        mode: actual.file.mode.as_deref().unwrap_or_default(),
        owner: actual.file.owner.as_deref().unwrap_or_default(),
    });
    file::compare_yaml(d, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{self, Action};
    use serde_json::json;

    const FILE: &str = "/etc/netplan/50-cloud-init.yaml";
    const WANT: &str =
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [10.203.1.203/24]\n";

    fn desired() -> Desired {
        let k: &dyn kinds::Kind = &super::super::Netplan;
        Desired::new(k, format!("netplan:{FILE}"), "h", "h", WANT.into()).file(FILE, 0o600, "root")
    }

    fn section(text: Option<&str>, mode: &str) -> Section {
        let mut s = Section::default();
        s.values.insert(
            "f.exists".into(),
            if text.is_some() { "1" } else { "0" }.into(),
        );
        if let Some(t) = text {
            s.values.insert("f.content".into(), t.into());
            s.values.insert("f.mode".into(), mode.into());
            s.values.insert("f.owner".into(), "root".into());
        }
        s
    }

    /// Compared by meaning: another layout of the same YAML is in sync; the
    /// facts keep the shape plans had before the typed layer.
    #[test]
    fn compared_by_meaning_mode_and_owner() {
        let same =
            "network:\n  ethernets:\n    eth0: {addresses: ['10.203.1.203/24']}\n  version: 2\n";
        let f = observe(&section(Some(same), "600")).unwrap();
        assert_eq!(compare(&desired(), &f), Verdict::InSync);
        let v = serde_json::to_value(&f).unwrap();
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["exists", "meaning", "mode", "owner", "text"]);
        let other = "network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [10.203.12.230/24]\n";
        let f = observe(&section(Some(other), "644")).unwrap();
        let Verdict::Drift {
            action,
            reason,
            diff,
        } = compare(&desired(), &f)
        else {
            panic!()
        };
        assert_eq!(action, Action::Change);
        assert_eq!(
            reason,
            "content differs at /network/ethernets/eth0/addresses; mode 644 should be 600"
        );
        assert!(
            diff.unwrap()
                .contains("+      addresses: [10.203.1.203/24]")
        );
        let f = observe(&section(Some("network: [\n"), "600")).unwrap();
        assert!(
            f.meaning
                .as_ref()
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("(not valid YAML")
        );
        assert!(matches!(compare(&desired(), &f), Verdict::Drift { .. }));
        let f = observe(&section(None, "")).unwrap();
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({ "exists": false, "text": "" })
        );
        let Verdict::Drift { action, reason, .. } = compare(&desired(), &f) else {
            panic!()
        };
        assert_eq!(
            (action, reason.as_str()),
            (
                Action::Create,
                "/etc/netplan/50-cloud-init.yaml does not exist"
            )
        );
    }
}
