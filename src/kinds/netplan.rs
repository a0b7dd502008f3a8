//! netplan: the guest's network as the host sees it. Three resources per
//! managed interface, one [`Spec`] part each:
//! - the managed file, in the shape cloud-init writes it, compared by
//!   meaning (parsed YAML), mode 0600 and owner root (`file`);
//! - the other files netplan reads that configure the interface too
//!   (`others`, planned for removal);
//! - the live addresses and default route (`live`: right on disk but not
//!   applied is drift of its own).
//!
//! Each change is [`Lifecycle::Confirmed`](super::Lifecycle::Confirmed):
//! the engine activates the changes of one run together and rolls them
//! back together. A managed file cloud-init generates is handed off
//! ([`HandOff`]): spine never edits it on the guest.

mod config;
mod file;
mod live;
mod others;

use serde::{Deserialize, Serialize};

use super::{Desired, HandOff, Route, SecretHashes, TypedKind, Verdict};
use crate::gather::script::Section;
use crate::model::{LinkKind, NetworkOwner};
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct Netplan;

/// The managed interface as the registry has it (every part's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name on the guest (`eth0`).
    pub name: String,
    pub kind: LinkKind,
    /// `ADDRESS/PREFIX`.
    pub address: String,
    /// Its MAC, lowercase, when the registry gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Interface {
    /// Name and MAC, as netplan definitions select an interface.
    fn iface(&self) -> config::Iface<'_> {
        config::Iface {
            name: &self.name,
            mac: self.mac.as_deref().unwrap_or_default(),
        }
    }

    /// The address without its prefix length.
    fn ip(&self) -> &str {
        self.address.split('/').next().unwrap_or_default()
    }
}

/// What a netplan resource is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Spec {
    /// The managed file (the resource's path and content).
    File {
        interface: Interface,
        /// Who writes the file on the guest: cloud-init's is handed off.
        owner: NetworkOwner,
    },
    /// The other files netplan reads that configure the interface.
    Others {
        interface: Interface,
        /// The managed file's path.
        managed: String,
    },
    /// The interface's live addresses and default route.
    Live {
        interface: Interface,
        /// The default gateway.
        gateway: String,
    },
}

impl Spec {
    pub fn interface(&self) -> &Interface {
        match self {
            Spec::File { interface, .. }
            | Spec::Others { interface, .. }
            | Spec::Live { interface, .. } => interface,
        }
    }
}

/// What was read for a netplan resource (by part; see [`Spec`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    Others(others::Facts),
    Live(live::Facts),
    File(file::Facts),
}

fn mismatch(d: &Desired) -> String {
    format!(
        "the observed state of {} does not match its part (make a new plan)",
        d.id
    )
}

/// The word for a link kind in messages.
fn link_word(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Ethernet => "ethernet",
        LinkKind::Bond => "bond",
        LinkKind::Bridge => "bridge",
    }
}

impl TypedKind for Netplan {
    type Spec = Spec;
    type Facts = Facts;

    fn name(&self) -> &'static str {
        "netplan"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Spec)>, RenderError> {
        let Some(net) = cx.host.desired.as_ref().and_then(|d| d.network.as_ref()) else {
            return Ok(Vec::new());
        };
        let ctx = minijinja::context! {
            host => minijinja::context! { id => cx.host_id },
            network => minijinja::value::Serde(net),
        };
        let content = cx.templates.render("netplan/cloud-init.yaml.j2", ctx)?;
        let interface = Interface {
            name: net.interface.clone(),
            kind: net.kind,
            address: net.address.clone(),
            mac: net.mac.as_deref().map(str::to_lowercase),
        };
        let iface = &net.interface;
        let resource =
            |id: String, content: String| Desired::new(self, id, cx.host_id, cx.host_id, content);
        let managed =
            resource(format!("netplan:{}", net.file), content).file(&net.file, 0o600, "root");
        let others = resource(
            format!("netplan:{iface}/other-files"),
            format!("no netplan file but {} configures {iface}\n", net.file),
        );
        let live = resource(
            format!("netplan:{iface}/live"),
            format!(
                "{iface} address {}\n{iface} default via {}\n",
                net.address, net.gateway
            ),
        );
        Ok(vec![
            (
                managed,
                Spec::File {
                    interface: interface.clone(),
                    owner: net.owner,
                },
            ),
            (
                others,
                Spec::Others {
                    interface: interface.clone(),
                    managed: net.file.clone(),
                },
            ),
            (
                live,
                Spec::Live {
                    interface,
                    gateway: net.gateway.clone(),
                },
            ),
        ])
    }

    fn read_script(&self, d: &Desired, spec: &Spec) -> Result<Script, ScriptError> {
        let files = || shell::render("kinds/netplan/files.sh", minijinja::context! {});
        match spec {
            Spec::Others { .. } => shell::render(
                "kinds/netplan/others-read.sh",
                minijinja::context! { files => files()? },
            ),
            Spec::Live { interface, .. } => shell::render(
                "kinds/netplan/live-read.sh",
                minijinja::context! {
                    interface => &interface.name,
                    family => live::ip_family(&interface.address),
                    files => files()?,
                },
            ),
            Spec::File { .. } => super::file::read_script(d),
        }
    }

    fn observe(
        &self,
        _: &Desired,
        spec: &Spec,
        s: &Section,
        _: &dyn SecretHashes,
    ) -> Result<Facts, String> {
        Ok(match spec {
            Spec::Others {
                interface, managed, ..
            } => Facts::Others(others::observe(interface, managed, s)?),
            Spec::Live { interface, .. } => Facts::Live(live::observe(interface, s)?),
            Spec::File { .. } => Facts::File(file::observe(s)?),
        })
    }

    fn compare(&self, d: &Desired, spec: &Spec, actual: &Facts) -> Verdict {
        match (spec, actual) {
            (Spec::Others { interface, managed }, Facts::Others(f)) => {
                others::compare(interface, managed, f)
            }
            (Spec::Live { interface, gateway }, Facts::Live(f)) => {
                live::compare(interface, gateway, f)
            }
            (Spec::File { .. }, Facts::File(f)) => file::compare(d, f),
            _ => Verdict::Unknown {
                reason: mismatch(d),
            },
        }
    }

    fn apply(
        &self,
        d: &Desired,
        spec: &Spec,
        actual: &Facts,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, super::KindError> {
        let (script, files) = match (spec, actual) {
            (Spec::Others { .. }, Facts::Others(f)) => others::remove(f)?,
            (Spec::Live { interface, .. }, Facts::Live(_)) => (
                shell::render(
                    "kinds/netplan/live-apply.sh",
                    minijinja::context! { interface => &interface.name },
                )?,
                Vec::new(),
            ),
            (Spec::File { .. }, Facts::File(_)) => (
                super::file::put(d, &d.content)?,
                d.path.iter().cloned().collect(),
            ),
            _ => return Err(super::KindError::Shape(mismatch(d))),
        };
        let interface = spec.interface();
        let mut c = super::Change::new(script);
        if interface.kind != LinkKind::Ethernet {
            c.needs_force = Some(format!(
                "changing a {} needs --force",
                link_word(interface.kind)
            ));
        }
        let none = minijinja::context! {};
        c.lifecycle = super::Lifecycle::Confirmed(super::Confirmed {
            confirm_address: interface.ip().into(),
            files,
            check: shell::render("kinds/netplan/check.sh", none.clone())?,
            activate: shell::render("kinds/netplan/activate.sh", none)?,
        });
        Ok(c)
    }

    /// cloud-init generates the managed file: spine never edits it (the fix
    /// is at the hypervisor, handed to the VM by a restart: `spine apply
    /// --restart-vms`).
    fn hand_off(&self, _: &Desired, spec: &Spec) -> Option<HandOff> {
        matches!(
            spec,
            Spec::File {
                owner: NetworkOwner::CloudInit,
                ..
            }
        )
        .then_some(HandOff {
            generator: "cloud-init",
            route: Route::VmRestart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Action, Kind};
    use serde_json::json;

    const FILE: &str = "/etc/netplan/50-cloud-init.yaml";

    fn eth0(kind: LinkKind) -> Interface {
        Interface {
            name: "eth0".into(),
            kind,
            address: "10.203.1.203/24".into(),
            mac: Some("52:54:00:12:02:30".into()),
        }
    }

    fn resource(id: &str, spec: &Spec) -> Desired {
        let d = Desired::new(&Netplan, id, "h", "h", "network: {version: 2}\n".into());
        let d = match spec {
            Spec::File { .. } => d.file(FILE, 0o600, "root"),
            _ => d,
        };
        d.with_spec(&Netplan, spec).unwrap()
    }

    fn file(owner: NetworkOwner) -> Desired {
        let spec = Spec::File {
            interface: eth0(LinkKind::Ethernet),
            owner,
        };
        resource(&format!("netplan:{FILE}"), &spec)
    }

    fn live(kind: LinkKind) -> Desired {
        let spec = Spec::Live {
            interface: eth0(kind),
            gateway: "10.203.1.1".into(),
        };
        resource("netplan:eth0/live", &spec)
    }

    const PROVIDER: crate::secrets::env::EnvProvider = crate::secrets::env::EnvProvider;

    /// The spec as plans keep it: the part, the interface with its kind as
    /// the registry spells it, no string map.
    #[test]
    fn the_spec_is_tagged_by_part_with_the_link_kind_as_written() {
        let d = file(NetworkOwner::CloudInit);
        assert_eq!(
            d.spec,
            json!({
                "part": "file",
                "interface": {
                    "name": "eth0", "kind": "ethernet",
                    "address": "10.203.1.203/24", "mac": "52:54:00:12:02:30"
                },
                "owner": "cloud-init"
            })
        );
        assert_eq!(live(LinkKind::Bond).spec["interface"]["kind"], "bond");
        assert_eq!(live(LinkKind::Bond).spec["gateway"], "10.203.1.1");
    }

    /// A plan from before the typed layer (string args, no spec), a spec of
    /// another shape, and facts of another part are unknown with their
    /// reason, and apply refuses them.
    #[test]
    fn a_spec_or_facts_of_another_shape_is_unknown_with_its_reason() {
        let k: &dyn Kind = &Netplan;
        // As a plan file of the untyped netplan kind held it.
        let old: Desired = serde_json::from_value(json!({
            "kind": "netplan", "id": "netplan:eth0/live", "on": "h", "about": "h",
            "path": null, "mode": null, "owner": null, "content": "", "secrets": [],
            "args": { "part": "live", "interface": "eth0", "kind": "ethernet",
                      "address": "10.203.1.203/24", "gateway": "10.203.1.1" }
        }))
        .unwrap();
        let facts = json!({ "why": "Device \"eth0\" does not exist." });
        let Verdict::Unknown { reason } = k.compare(&old, &facts) else {
            panic!("an args-only netplan resource compared")
        };
        assert!(
            reason.starts_with("resource netplan:eth0/live does not hold a netplan spec (")
                && reason.ends_with("): make a new plan"),
            "{reason}"
        );
        assert!(k.apply(&old, &facts, &PROVIDER).is_err());
        assert_eq!(k.hand_off(&old), None);

        let mut odd = live(LinkKind::Ethernet);
        odd.spec["part"] = json!("routes");
        let Verdict::Unknown { reason } = k.compare(&odd, &facts) else {
            panic!("a spec of an unknown part compared")
        };
        assert!(reason.contains("unknown variant `routes`"), "{reason}");
        let mut odd = live(LinkKind::Ethernet);
        odd.spec["interface"]["kind"] = json!("Bond");
        let Verdict::Unknown { reason } = k.compare(&odd, &facts) else {
            panic!("a link kind of another spelling compared")
        };
        assert!(reason.contains("unknown variant `Bond`"), "{reason}");

        // The managed file's facts given to the live part.
        let file_facts = json!({ "exists": true, "text": "x", "mode": "600", "owner": "root" });
        let d = live(LinkKind::Ethernet);
        assert_eq!(
            k.compare(&d, &file_facts),
            Verdict::Unknown {
                reason: "the observed state of netplan:eth0/live does not match its part (make a new plan)".into()
            }
        );
        let e = k.apply(&d, &file_facts, &PROVIDER).unwrap_err();
        assert!(
            matches!(&e, crate::kinds::KindError::Shape(m) if m.contains("does not match its part")),
            "{e}"
        );
        // Facts no part reads.
        let Verdict::Unknown { reason } = k.compare(&d, &json!({ "addresses": [] })) else {
            panic!()
        };
        assert!(
            reason.starts_with(
                "the observed state of netplan:eth0/live is not what the netplan kind reads"
            ),
            "{reason}"
        );
    }

    /// The managed file cloud-init generates is handed off to it; one the
    /// registry says netplan owns, and the other parts, are spine's.
    #[test]
    fn a_file_cloud_init_generates_is_handed_off() {
        let k: &dyn Kind = &Netplan;
        let h = k.hand_off(&file(NetworkOwner::CloudInit)).unwrap();
        assert_eq!(
            (h.generator, h.route.flag()),
            ("cloud-init", "--restart-vms")
        );
        assert_eq!(k.hand_off(&file(NetworkOwner::Netplan)), None);
        assert_eq!(k.hand_off(&live(LinkKind::Ethernet)), None);
    }

    /// Every change is confirmed at the address without its prefix; a bond
    /// or bridge needs --force, named as the registry names it.
    #[test]
    fn changes_are_confirmed_and_a_bond_needs_force() {
        let k: &dyn Kind = &Netplan;
        let missing = json!({ "why": "no such device" });
        let c = k
            .apply(&live(LinkKind::Ethernet), &missing, &PROVIDER)
            .unwrap();
        assert_eq!(c.needs_force, None);
        let crate::kinds::Lifecycle::Confirmed(conf) = &c.lifecycle else {
            panic!("{c:?}")
        };
        assert_eq!(conf.confirm_address, "10.203.1.203");
        assert!(conf.files.is_empty());
        assert!(
            c.script.as_str().contains("'eth0'"),
            "{}",
            c.script.as_str()
        );
        let c = k.apply(&live(LinkKind::Bond), &missing, &PROVIDER).unwrap();
        assert_eq!(
            c.needs_force.as_deref(),
            Some("changing a bond needs --force")
        );
        let absent = json!({ "exists": false, "text": "" });
        let c = k
            .apply(&file(NetworkOwner::Netplan), &absent, &PROVIDER)
            .unwrap();
        let crate::kinds::Lifecycle::Confirmed(conf) = &c.lifecycle else {
            panic!("{c:?}")
        };
        assert_eq!(conf.files, [FILE]);
        assert!(matches!(
            k.compare(&file(NetworkOwner::Netplan), &absent),
            Verdict::Drift {
                action: Action::Create,
                ..
            }
        ));
    }
}
