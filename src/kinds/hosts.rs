//! hosts: a marked block of `/etc/hosts` (`hosts_entries:` in a host's
//! `desired:` section). Lines outside the block are the operator's and are
//! left alone; the block is added at the end when missing and replaced in
//! place when it differs. Read and written as a file resource (the shared
//! `scripts/kinds/file/` scripts: atomic write, the old file kept under the
//! run's backup folder).

use super::cron::split_block;
use super::file::FileFacts;
use super::{Desired, SecretHashes, TypedKind, Verdict};
use crate::gather::script::Section;
use crate::model::HostsEntry;
use crate::render::{RenderCx, RenderError};
use crate::shell::{Script, ScriptError};

pub struct HostsKind;

pub const PATH: &str = "/etc/hosts";

/// The `/etc/hosts` the registry wants, given the current one: every line
/// outside the managed block as it is, the block replaced (or appended).
pub fn desired_hosts(current: &str, block: &str) -> String {
    let (before, _, after) = split_block(current);
    let lines = |v: Vec<&str>| v.into_iter().map(|l| format!("{l}\n")).collect::<String>();
    format!("{}{}{}", lines(before), block, lines(after))
}

/// Why an entry cannot be written into `/etc/hosts`, if it cannot: the
/// address must be an IP address and every name a host name (gate V16 says
/// the same with file and line; this keeps an unverified render safe too).
fn unsafe_entry(e: &HostsEntry) -> Option<String> {
    if !crate::safe::ip(&e.address) {
        return Some(format!(
            "hosts_entries address `{}` is not an IP address",
            crate::safe::shown(&e.address)
        ));
    }
    if e.names.is_empty() {
        return Some(format!("hosts_entries {} has no names", e.address));
    }
    e.names.iter().find(|n| !crate::safe::hostname(n)).map(|n| {
        format!(
            "hosts_entries name `{}` is not a host name",
            crate::safe::shown(n)
        )
    })
}

impl TypedKind for HostsKind {
    /// Nothing beyond the file and its block (the resource's content).
    type Spec = ();
    type Facts = FileFacts;

    fn name(&self) -> &'static str {
        "hosts"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, ())>, RenderError> {
        let Some(entries) = cx
            .host
            .desired
            .as_ref()
            .map(|d| &d.hosts_entries)
            .filter(|e| !e.is_empty())
        else {
            return Ok(Vec::new());
        };
        if let Some(why) = entries.iter().find_map(unsafe_entry) {
            return Err(RenderError::Registry(format!("{why} (gate V16)")));
        }
        let ctx = minijinja::context! { entries => minijinja::value::Serde(entries) };
        let content = cx.templates.render("hosts/block.j2", ctx)?;
        let d = Desired::new(
            self,
            format!("hosts:{PATH}"),
            cx.host_id,
            cx.host_id,
            content,
        )
        .file(PATH, 0o644, "root");
        Ok(vec![(d, ())])
    }

    fn read_script(&self, d: &Desired, _: &()) -> Result<Script, ScriptError> {
        super::file::read_script(d)
    }

    fn observe(
        &self,
        _: &Desired,
        _: &(),
        s: &Section,
        _: &dyn SecretHashes,
    ) -> Result<FileFacts, String> {
        FileFacts::observe(s, "f")
    }

    fn compare(&self, d: &Desired, _: &(), actual: &FileFacts) -> Verdict {
        let current = actual.text.as_str();
        let want = desired_hosts(current, &d.content);
        let mut reasons = Vec::new();
        if !actual.exists {
            reasons.push(format!("{PATH} does not exist"));
        } else {
            match split_block(current).1 {
                None => reasons.push("the managed block is missing".to_string()),
                Some(_) if want != current => reasons.push("the managed block differs".to_string()),
                Some(_) => {}
            }
            actual.attrs_differ(d, &mut reasons);
        }
        if reasons.is_empty() {
            return Verdict::InSync;
        }
        super::drift(!actual.exists, &reasons, PATH, current, &want)
    }

    fn apply(
        &self,
        d: &Desired,
        _: &(),
        actual: &FileFacts,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, super::KindError> {
        let script = super::file::put(d, &desired_hosts(&actual.text, &d.content))?;
        Ok(super::Change::new(script))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Action, Kind};
    use serde_json::{Value, json};

    const BLOCK: &str = "# BEGIN spine managed block (x)\n10.203.1.204\tpihole pihole.lan\n# END spine managed block\n";

    fn desired() -> Desired {
        Desired::new(&HostsKind, "hosts:/etc/hosts", "h", "h", BLOCK.into())
            .file(PATH, 0o644, "root")
    }

    fn file(text: &str) -> Value {
        json!({ "exists": true, "text": text, "mode": "644", "owner": "root" })
    }

    #[test]
    fn the_block_is_appended_and_other_lines_stay() {
        let cur = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
        let want = desired_hosts(cur, BLOCK);
        assert_eq!(want, format!("{cur}{BLOCK}"));
        // Converged: the same again changes nothing.
        assert_eq!(desired_hosts(&want, BLOCK), want);
    }

    #[test]
    fn a_changed_block_is_replaced_in_place() {
        let old = "127.0.0.1 localhost\n# BEGIN spine managed block (x)\n10.0.0.1 old\n# END spine managed block\n10.9.9.9 mine\n";
        let want = desired_hosts(old, BLOCK);
        assert_eq!(want, format!("127.0.0.1 localhost\n{BLOCK}10.9.9.9 mine\n"));
    }

    #[test]
    fn compare_says_missing_differs_or_in_sync() {
        let d = desired();
        let cur = "127.0.0.1 localhost\n";
        match Kind::compare(&HostsKind, &d, &file(cur)) {
            Verdict::Drift {
                action,
                reason,
                diff,
            } => {
                assert_eq!(action, Action::Change);
                assert_eq!(reason, "the managed block is missing");
                assert!(diff.unwrap().contains("+10.203.1.204\tpihole pihole.lan"));
            }
            v => panic!("{v:?}"),
        }
        let synced = desired_hosts(cur, BLOCK);
        assert_eq!(
            Kind::compare(&HostsKind, &d, &file(&synced)),
            Verdict::InSync
        );
        let edited = synced.replace("pihole.lan", "pihole.home");
        assert!(matches!(
            Kind::compare(&HostsKind, &d, &file(&edited)),
            Verdict::Drift { reason, .. } if reason == "the managed block differs"
        ));
        let mut wrong_mode = file(&synced);
        wrong_mode["mode"] = "600".into();
        assert!(matches!(
            Kind::compare(&HostsKind, &d, &wrong_mode),
            Verdict::Drift { reason, .. } if reason == "mode 600 should be 644"
        ));
        assert!(matches!(
            Kind::compare(&HostsKind, &d, &json!({ "exists": false, "text": "" })),
            Verdict::Drift {
                action: Action::Create,
                ..
            }
        ));
    }

    #[test]
    fn unsafe_entries_are_refused() {
        let e = |a: &str, n: &[&str]| HostsEntry {
            address: a.into(),
            names: n.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(unsafe_entry(&e("10.0.0.1", &["a", "b.lan"])), None);
        assert_eq!(unsafe_entry(&e("fd00::1", &["a"])), None);
        assert!(
            unsafe_entry(&e("10.0.0.1\n1.2.3.4", &["a"]))
                .unwrap()
                .contains("not an IP address")
        );
        assert!(
            unsafe_entry(&e("pihole", &["a"]))
                .unwrap()
                .contains("not an IP address")
        );
        assert!(
            unsafe_entry(&e("10.0.0.1", &["a b"]))
                .unwrap()
                .contains("not a host name")
        );
        assert!(unsafe_entry(&e("10.0.0.1", &["x\n# END spine managed block"])).is_some());
        assert!(
            unsafe_entry(&e("10.0.0.1", &[]))
                .unwrap()
                .contains("no names")
        );
    }
}
