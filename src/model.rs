//! The typed registry: what the later stages (render, gather, plan, apply)
//! consume. Built from the schema-checked JSON of each file; keys the tool does
//! not use are ignored, exactly as the operator's real files carry them.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::FileKind;
use crate::load::Loaded;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ServiceRegistry {
    #[serde(default)]
    pub services: IndexMap<String, Service>,
    #[serde(default)]
    pub hosts: IndexMap<String, Host>,
    #[serde(default)]
    pub infisical_projects: IndexMap<String, InfisicalProject>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Service {
    pub host: String,
    pub port: Option<u16>,
    pub health: Option<String>,
    pub container: Option<String>,
    pub compose: Option<String>,
    pub secrets_project: Option<String>,
    pub status: Option<String>,
    /// Everything else the entry carries (scanned for literal secrets).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Host {
    pub tailscale_ip: Option<String>,
    pub ssh: Option<String>,
    pub ssh_user: Option<String>,
    pub os: Option<String>,
    pub vmid: Option<u32>,
    pub proxmox_host: Option<String>,
    pub desired: Option<DesiredHost>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(from = "ProjectForm")]
pub struct InfisicalProject {
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub path: Option<String>,
}

/// `infisical_projects.<name>` as written: a project id, or the full mapping.
#[derive(Deserialize)]
#[serde(untagged)]
enum ProjectForm {
    Id(String),
    Full {
        project_id: Option<String>,
        environment: Option<String>,
        path: Option<String>,
    },
}

impl From<ProjectForm> for InfisicalProject {
    fn from(f: ProjectForm) -> Self {
        match f {
            ProjectForm::Id(id) => InfisicalProject {
                project_id: Some(id),
                ..Default::default()
            },
            ProjectForm::Full {
                project_id,
                environment,
                path,
            } => InfisicalProject {
                project_id,
                environment,
                path,
            },
        }
    }
}

/// The status words spine knows; `active` (or no status) means running.
pub const ACTIVE: &str = "active";

/// Whether an entry with this `status` is meant to be running: no status, or `active`.
pub fn is_active(status: Option<&str>) -> bool {
    status.is_none_or(|s| s == ACTIVE)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DesiredHost {
    pub ssh_user: Option<String>,
    #[serde(default)]
    pub access: Vec<AccessPath>,
    pub network: Option<Network>,
    pub tailscale: Option<Tailscale>,
    /// Lines spine keeps in a marked block of `/etc/hosts` (kind `hosts`).
    #[serde(default)]
    pub hosts_entries: Vec<HostsEntry>,
}

/// One `/etc/hosts` line: an IP address and the names it answers to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HostsEntry {
    pub address: String,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Tailscale,
    Lan,
    Jump,
    SshConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AccessPath {
    pub via: Via,
    pub address: String,
    pub jump: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum NetworkOwner {
    #[serde(rename = "cloud-init")]
    CloudInit,
    #[serde(rename = "netplan")]
    Netplan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    #[default]
    Ethernet,
    Bond,
    Bridge,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Network {
    pub owner: NetworkOwner,
    #[serde(default = "default_netplan_file")]
    pub file: String,
    pub interface: String,
    pub mac: Option<String>,
    pub address: String,
    pub gateway: String,
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub kind: LinkKind,
}

fn default_netplan_file() -> String {
    "/etc/netplan/50-cloud-init.yaml".into()
}

impl Network {
    /// The address without its prefix length.
    pub fn ip(&self) -> &str {
        self.address.split('/').next().unwrap_or(&self.address)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tailscale {
    pub hostname: String,
    pub accept_dns: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StackRegistry {
    #[serde(default)]
    pub stacks: Vec<Stack>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Stack {
    pub stack_id: String,
    pub name: Option<String>,
    pub path: Option<String>,
    pub deploy_target: Option<String>,
    pub status: Option<String>,
    /// The operator's compose files (relative to the workbench, `source_root`).
    #[serde(default)]
    pub compose_files: Vec<String>,
    pub desired: Option<DesiredStack>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DesiredStack {
    pub host: String,
    #[serde(default)]
    pub services: Vec<String>,
    pub compose: Option<Compose>,
    #[serde(default)]
    pub cron: Vec<CronJob>,
    #[serde(default)]
    pub legacy_roots: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Compose {
    pub project: String,
    pub directory: String,
    /// A compose template shipped with spine (templates/compose/NAME.yml.j2) ...
    pub template: Option<String>,
    /// ... or the operator's own compose file, relative to the repository root.
    pub file: Option<String>,
    pub version: Option<String>,
    /// With `template`: required. With `file`: optional, and when given it
    /// must agree with the file (gate V17).
    #[serde(default)]
    pub services: IndexMap<String, ComposeService>,
    /// The file `file` names, as read (never from YAML).
    #[serde(skip)]
    pub loaded: Option<ComposeText>,
    #[serde(default)]
    pub env: IndexMap<String, Value>,
    #[serde(default)]
    pub secrets: IndexMap<String, SecretRef>,
}

/// The operator's compose file named by `compose.file`, as read from the
/// repository (filled in by `Registry::from_loaded`; never from YAML).
#[derive(Debug, Clone, Default)]
pub struct ComposeText {
    /// Where it was read (as diagnostics name it).
    pub shown: String,
    pub text: std::sync::Arc<str>,
    /// Its services in file order: `container_name` and `image` when set.
    pub services: IndexMap<String, FileService>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileService {
    pub container: Option<String>,
    pub image: Option<String>,
}

impl ComposeText {
    pub fn parse(shown: &str, text: std::sync::Arc<str>, json: &Value) -> Self {
        let services = json["services"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, s)| {
                let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
                (
                    name.clone(),
                    FileService {
                        container: text("container_name"),
                        image: text("image"),
                    },
                )
            })
            .collect();
        ComposeText {
            shown: shown.to_string(),
            text,
            services,
        }
    }
}

/// One service of a stack as it is compared on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackService {
    pub name: String,
    pub container: Option<String>,
    /// `None`: not compared (a file service whose image compose resolves
    /// from variables, or that is built).
    pub image: Option<String>,
}

impl Compose {
    /// The services the host must run: the registry's for a template; for a
    /// file, the file's, each named by its `container_name` or compose's
    /// default `PROJECT-SERVICE-1`.
    pub fn stack_services(&self) -> Vec<StackService> {
        match (self.file.as_ref(), self.loaded.as_ref()) {
            (Some(_), Some(f)) => f
                .services
                .iter()
                .map(|(name, s)| StackService {
                    name: name.clone(),
                    container: Some(
                        s.container
                            .clone()
                            .unwrap_or_else(|| format!("{}-{name}-1", self.project)),
                    ),
                    image: s.image.clone().filter(|i| !i.contains('$')),
                })
                .collect(),
            _ => self
                .services
                .iter()
                .map(|(name, s)| StackService {
                    name: name.clone(),
                    container: s.container.clone(),
                    image: Some(s.image.clone()),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ComposeService {
    pub registry: Option<String>,
    pub container: Option<String>,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SecretRef {
    pub project: String,
    pub key: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CronJob {
    pub id: String,
    pub user: String,
    pub schedule: String,
    pub command: String,
    #[serde(default)]
    pub scripts: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HealthFile {
    #[serde(default)]
    pub defaults: HealthDefaults,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HealthDefaults {
    #[serde(default = "five")]
    pub connect_timeout_sec: f64,
    #[serde(default = "ten")]
    pub max_time_sec: f64,
    /// An answer slower than this is DEGRADED (spine extension; default: half of `max_time_sec`).
    pub slow_sec: Option<f64>,
}

impl Default for HealthDefaults {
    fn default() -> Self {
        Self {
            connect_timeout_sec: five(),
            max_time_sec: ten(),
            slow_sec: None,
        }
    }
}

fn five() -> f64 {
    5.0
}
fn ten() -> f64 {
    10.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub host: String,
    pub url: String,
    pub expect: Option<Expect>,
    pub expect_body: Option<String>,
    pub enabled: Option<bool>,
    pub disabled_reason: Option<String>,
    pub description: Option<String>,
}

/// The status codes that mean healthy: one code, a list, or "401,403".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "ExpectForm", into = "Vec<u16>")]
pub struct Expect(pub Vec<u16>);

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectForm {
    One(u16),
    List(Vec<u16>),
    Text(String),
}

impl TryFrom<ExpectForm> for Expect {
    type Error = String;
    fn try_from(f: ExpectForm) -> Result<Self, String> {
        Ok(Expect(match f {
            ExpectForm::One(c) => vec![c],
            ExpectForm::List(l) => l,
            ExpectForm::Text(t) => t
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .map_err(|_| format!("`{t}` is not a list of status codes"))
                })
                .collect::<Result<_, _>>()?,
        }))
    }
}

impl From<Expect> for Vec<u16> {
    fn from(e: Expect) -> Self {
        e.0
    }
}

impl Expect {
    /// Whether `status` is one of the expected codes (default: 200).
    pub fn accepts(e: Option<&Expect>, status: u16) -> bool {
        e.map_or(status == 200, |e| e.0.contains(&status))
    }
    /// The expected codes as text: `200`, `401 or 403`.
    pub fn show(e: Option<&Expect>) -> String {
        e.map_or_else(
            || "200".into(),
            |e| {
                e.0.iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            },
        )
    }
}

/// One entry of ssh.targets.yaml `ssh.targets[]` (index kept for diagnostics).
#[derive(Debug, Clone, Default)]
pub struct SshTarget {
    pub index: usize,
    pub id: String,
    /// The preferred address (the operator's scripts read `.host`).
    pub host: Option<String>,
    pub user: Option<String>,
    pub tailscale_ip: Option<String>,
}

/// One entry of vm.lifecycle.yaml `vms[]`.
#[derive(Debug, Clone, Default)]
pub struct Vm {
    pub index: usize,
    pub id: u32,
    pub hostname: Option<String>,
    pub status: Option<String>,
    pub lan_ip: Option<String>,
    pub tailscale_ip: Option<String>,
    pub ssh_target: Option<String>,
    pub ssh_user: Option<String>,
}

/// secrets.binding.yaml `infisical:`.
#[derive(Debug, Clone, Default)]
pub struct InfisicalBinding {
    pub environment: Option<String>,
    pub base_path: Option<String>,
}

/// One stack folder of docker.compose.targets.yaml `targets.<host>.stacks[]`.
#[derive(Debug, Clone, Default)]
pub struct ComposeDir {
    pub host: String,
    pub index: usize,
    pub path: String,
}

/// Facts from the operator's bindings (each file optional). Read leniently,
/// the way the operator's scripts read them (`yq .ssh.targets[].host`): an
/// entry without the keys spine needs is passed over.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub ssh_targets: Vec<SshTarget>,
    /// `ssh.defaults.user` (the user of a target without its own).
    pub ssh_default_user: Option<String>,
    pub vms: Vec<Vm>,
    pub infisical: Option<InfisicalBinding>,
    /// Compose folders found on each host (docker.compose.targets.yaml), for
    /// the hosts listed there and not `enabled: false`.
    pub compose_dirs: IndexMap<String, Vec<ComposeDir>>,
}

fn text_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Bindings {
    fn from_loaded(loaded: &Loaded) -> Self {
        let json = |k: FileKind| loaded.docs.get(&k).map(|d| &d.json);
        let mut b = Bindings::default();
        if let Some(ssh) = json(FileKind::SshTargets).and_then(|j| j.get("ssh")) {
            b.ssh_default_user = ssh.get("defaults").and_then(|d| text_at(d, "user"));
            let targets = ssh.get("targets").and_then(Value::as_array);
            for (index, t) in targets.into_iter().flatten().enumerate() {
                let Some(id) = text_at(t, "id") else { continue };
                b.ssh_targets.push(SshTarget {
                    index,
                    id,
                    host: text_at(t, "host"),
                    user: text_at(t, "user"),
                    tailscale_ip: text_at(t, "tailscale_ip"),
                });
            }
        }
        let vms = json(FileKind::VmLifecycle)
            .and_then(|j| j.get("vms"))
            .and_then(Value::as_array);
        for (index, v) in vms.into_iter().flatten().enumerate() {
            let Some(id) = v.get("id").and_then(Value::as_u64) else {
                continue;
            };
            b.vms.push(Vm {
                index,
                id: u32::try_from(id).unwrap_or(u32::MAX),
                hostname: text_at(v, "hostname"),
                status: text_at(v, "status"),
                lan_ip: text_at(v, "lan_ip"),
                tailscale_ip: text_at(v, "tailscale_ip"),
                ssh_target: text_at(v, "ssh_target"),
                ssh_user: text_at(v, "ssh_user"),
            });
        }
        let targets = json(FileKind::ComposeTargets)
            .and_then(|j| j.get("targets"))
            .and_then(Value::as_object);
        for (host, t) in targets.into_iter().flatten() {
            if t.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let stacks = t.get("stacks").and_then(Value::as_array);
            let dirs = stacks
                .into_iter()
                .flatten()
                .enumerate()
                .filter_map(|(index, s)| {
                    Some(ComposeDir {
                        host: host.clone(),
                        index,
                        path: text_at(s, "path")?,
                    })
                })
                .collect();
            b.compose_dirs.insert(host.clone(), dirs);
        }
        b.infisical = json(FileKind::SecretsBinding)
            .and_then(|j| j.get("infisical"))
            .map(|i| InfisicalBinding {
                environment: text_at(i, "environment"),
                base_path: text_at(i, "base_path"),
            });
        b
    }

    /// A project given by id alone takes environment and folder from the
    /// operator's secrets.binding.yaml (`infisical.environment`, `base_path`).
    pub fn fill_infisical_defaults(&self, projects: &mut IndexMap<String, InfisicalProject>) {
        let Some(b) = &self.infisical else { return };
        for p in projects.values_mut() {
            p.environment = p.environment.take().or_else(|| b.environment.clone());
            p.path = p.path.take().or_else(|| b.base_path.clone());
        }
    }

    pub fn target(&self, id: &str) -> Option<&SshTarget> {
        self.ssh_targets.iter().find(|t| t.id == id)
    }

    /// The user the operator's tooling logs in to `target` as.
    pub fn user_of<'a>(&'a self, target: &'a SshTarget) -> Option<&'a str> {
        target.user.as_deref().or(self.ssh_default_user.as_deref())
    }

    pub fn vm(&self, id: u32) -> Option<&Vm> {
        self.vms.iter().find(|v| v.id == id)
    }

    /// The VM whose hostname (or ssh target) is this host id.
    pub fn vm_of_host(&self, host: &str) -> Option<&Vm> {
        self.vms
            .iter()
            .find(|v| v.hostname.as_deref() == Some(host) || v.ssh_target.as_deref() == Some(host))
    }
}

/// The registry, typed. A file that failed its schema is `None`: gates that
/// need it are skipped (and say so), never passed.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub services: Option<ServiceRegistry>,
    pub stacks: Option<StackRegistry>,
    pub health: Option<HealthFile>,
    pub bindings: Bindings,
}

impl Registry {
    /// Type the files in `loaded` whose kinds are in `valid`.
    pub fn from_loaded(loaded: &Loaded, valid: &[FileKind]) -> Result<Self, String> {
        fn typed<T: for<'de> Deserialize<'de>>(
            loaded: &Loaded,
            valid: &[FileKind],
            kind: FileKind,
        ) -> Result<Option<T>, String> {
            if !valid.contains(&kind) {
                return Ok(None);
            }
            let Some(doc) = loaded.docs.get(&kind) else {
                return Ok(None);
            };
            serde_json::from_value(doc.json.clone())
                .map(Some)
                .map_err(|e| format!("{}: {e}", doc.source.name))
        }
        let mut stacks: Option<StackRegistry> = typed(loaded, valid, FileKind::Stacks)?;
        for c in stacks
            .iter_mut()
            .flat_map(|s| s.stacks.iter_mut())
            .filter_map(|s| s.desired.as_mut()?.compose.as_mut())
        {
            let read = c.file.as_ref().and_then(|f| loaded.compose.get(f));
            if let Some(crate::load::ComposeRead::Loaded { source, tree }) = read {
                c.loaded = Some(ComposeText::parse(
                    &source.name,
                    source.text.clone(),
                    &tree.to_json(),
                ));
            }
        }
        Ok(Registry {
            services: typed(loaded, valid, FileKind::Services)?,
            stacks,
            health: typed(loaded, valid, FileKind::Health)?,
            bindings: Bindings::from_loaded(loaded),
        })
    }
}

/// Expand a leading `~/` for `user` (root's home is /root, others /home/USER).
pub fn expand_home(path: &str, user: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) if user == "root" => format!("/root/{rest}"),
        Some(rest) => format!("/home/{user}/{rest}"),
        None if path == "~" => {
            if user == "root" {
                "/root".into()
            } else {
                format!("/home/{user}")
            }
        }
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_is_one_code_a_list_or_a_comma_separated_string() {
        let e = |t: &str| serde_json::from_str::<Expect>(t).map(|e| e.0);
        assert_eq!(e("200").unwrap(), vec![200]);
        assert_eq!(e("[401, 403]").unwrap(), vec![401, 403]);
        assert_eq!(e(r#""401, 403""#).unwrap(), vec![401, 403]);
        assert!(e(r#""4o1""#).is_err());
    }

    #[test]
    fn a_project_given_by_id_takes_environment_and_folder_from_secrets_binding() {
        let loaded = crate::load::load_texts(
            "t",
            [(
                FileKind::SecretsBinding,
                "secrets.binding.yaml".to_string(),
                "infisical:\n  environment: prod\n  base_path: /spine\n",
            )],
        );
        let b = Bindings::from_loaded(&loaded);
        let mut projects: IndexMap<String, InfisicalProject> = serde_json::from_str(
            r#"{"infra": "01dd", "own": {"project_id": "x", "environment": "dev", "path": "/p"}}"#,
        )
        .unwrap();
        b.fill_infisical_defaults(&mut projects);
        let infra = &projects["infra"];
        assert_eq!(
            (infra.environment.as_deref(), infra.path.as_deref()),
            (Some("prod"), Some("/spine"))
        );
        let own = &projects["own"];
        assert_eq!(
            (own.environment.as_deref(), own.path.as_deref()),
            (Some("dev"), Some("/p"))
        );
    }

    #[test]
    fn an_infisical_project_is_an_id_or_a_mapping() {
        let p: InfisicalProject = serde_json::from_str(r#""01dd-id""#).unwrap();
        assert_eq!(p.project_id.as_deref(), Some("01dd-id"));
        assert_eq!(p.environment, None);
        let p: InfisicalProject =
            serde_json::from_str(r#"{"project_id": "x", "environment": "prod"}"#).unwrap();
        assert_eq!(
            (p.project_id.as_deref(), p.environment.as_deref()),
            (Some("x"), Some("prod"))
        );
    }
}
