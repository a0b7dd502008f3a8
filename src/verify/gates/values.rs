//! V16: values cannot smuggle. Every registry string that reaches a rendered
//! file, a command or a path is checked for what it could smuggle there: a
//! control character (a newline ends a YAML line, a crontab line or a `.env`
//! line and starts one of the attacker's), a name or path that leaves its
//! place (`../x`, `/etc`), an address that is an option (`-oProxyCommand=`).
//! The rules live in [`crate::safe`], shared with the template filters and
//! apply, so a value refused here is also one the renderer cannot carry.

use super::{host, stack};
use crate::diag::{FileKind, Finding, Place, pointer};
use crate::model::{Compose, CronJob, HostsEntry, Network};
use crate::safe;
use crate::verify::{Ctx, Gate};

pub const NO_SMUGGLING: Gate = Gate {
    id: "V16",
    name: "values cannot smuggle",
    help: "Strings that reach rendered files, commands or paths hold no control characters (newline, CR, NUL, ESC, C1, U+2028/2029; a tab only in free text: cron description, command and schedule, .env values); host ids and names match ^[A-Za-z0-9][A-Za-z0-9_.-]*$; images have no white space; .env keys are ^[A-Za-z_][A-Za-z0-9_]*$; written paths are absolute and normalised (no `..`, `.`, `//`), and compose.directory is never a system directory (/, /etc, /usr, /var, /opt, /lib*, /root, ...); addresses are IP addresses or host names.",
    subject: "registry strings that reach rendered files, commands or paths",
    run: no_smuggling,
};

/// Collects findings for one registry, and counts the values it checked.
struct Check(Vec<Finding>, usize);

impl Check {
    fn fail(&mut self, place: Place, message: String, help: &str) {
        self.0.push(
            Finding::error("V16", place, message)
                .label("unsafe value")
                .help(help.to_string()),
        );
    }

    /// Control characters; `true` when the value is clean.
    fn text(&mut self, place: Place, what: &str, v: &str, tab_ok: bool) -> bool {
        self.1 += 1;
        match safe::control_char(v, tab_ok) {
            None => true,
            Some(c) => {
                self.fail(
                    place,
                    format!(
                        "{what} holds {}: in a rendered file or a command it could end the line and add lines of its own",
                        safe::char_name(c)
                    ),
                    "write the value on one line without control characters (in YAML, a plain or quoted scalar without `\\n`, not a `|` block)",
                );
                false
            }
        }
    }

    /// Control characters, then a shape.
    fn shaped(&mut self, place: Place, what: &str, v: &str, ok: fn(&str) -> bool, shape: &str) {
        if self.text(place.clone(), what, v, false) && !ok(v) {
            self.fail(
                place,
                format!("{what} `{}` is not {shape}", safe::shown(v)),
                &format!("write {shape}"),
            );
        }
    }

    /// An absolute, normalised path (`..` would leave its place).
    fn path(&mut self, place: Place, what: &str, v: &str) -> bool {
        if !self.text(place.clone(), what, v, false) {
            return false;
        }
        match safe::path_problem(v) {
            None => true,
            Some(why) => {
                self.fail(
                    place,
                    format!("{what} `{}` {why}", safe::shown(v)),
                    "write an absolute, normalised path: starting with `/`, without `..`, `.`, `//` or a trailing `/`",
                );
                false
            }
        }
    }
}

fn no_smuggling(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut c = Check(Vec::new(), 0);
    hosts(ctx, &mut c);
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(d) = &st.desired else { continue };
        if let Some(compose) = &d.compose {
            compose_values(i, compose, &mut c);
        }
        for (j, job) in d.cron.iter().enumerate() {
            cron_job(i, j, job, &mut c);
        }
        for (j, root) in d.legacy_roots.iter().enumerate() {
            let place = stack(i, &["desired", "legacy_roots", &j.to_string()]);
            if c.text(place.clone(), "a legacy root", root, false) {
                let abs = root.strip_prefix('~').unwrap_or(root);
                if abs.starts_with('/') {
                    c.path(place, "the legacy root", abs);
                }
            }
        }
    }
    for (i, e) in ctx.health.endpoints.iter().enumerate() {
        let place = Place::value(
            FileKind::Health,
            pointer(["endpoints".to_string(), i.to_string(), "url".to_string()]),
        );
        c.text(
            place,
            &format!("the URL of endpoint `{}`", e.id),
            &e.url,
            false,
        );
    }
    for (name, p) in &ctx.services.infisical_projects {
        for (field, v) in [
            ("project_id", &p.project_id),
            ("environment", &p.environment),
            ("path", &p.path),
        ] {
            if let Some(v) = v {
                let place = Place::value(
                    FileKind::Services,
                    pointer(["infisical_projects", name.as_str(), field]),
                );
                c.text(
                    place,
                    &format!("infisical project `{name}` {field}"),
                    v,
                    false,
                );
            }
        }
    }
    *n += c.1;
    c.0
}

fn hosts(ctx: &Ctx, c: &mut Check) {
    for (id, h) in &ctx.services.hosts {
        if !safe::host_id(id) {
            c.fail(
                Place::key(FileKind::Services, pointer(["hosts", id.as_str()])),
                format!("host id `{}` is not a safe name: it names local files (render output, dumps)", safe::shown(id)),
                "use letters, digits, `-`, `_` and `.`, starting with a letter or digit (e.g. `immich`)",
            );
        }
        let opt = [
            (
                "ssh",
                &h.ssh,
                safe::address as fn(&str) -> bool,
                "an ssh_config alias, host name or IP address",
            ),
            ("ssh_user", &h.ssh_user, safe::user, "a user name"),
            ("tailscale_ip", &h.tailscale_ip, safe::ip, "an IP address"),
            ("proxmox_host", &h.proxmox_host, safe::host_id, "a host id"),
        ];
        for (field, v, ok, shape) in opt {
            if let Some(v) = v {
                c.shaped(
                    host(id, &[field]),
                    &format!("host `{id}` {field}"),
                    v,
                    ok,
                    shape,
                );
            }
        }
        let Some(d) = &h.desired else { continue };
        if let Some(u) = &d.ssh_user {
            c.shaped(
                host(id, &["desired", "ssh_user"]),
                "desired.ssh_user",
                u,
                safe::user,
                "a user name",
            );
        }
        for (i, a) in d.access.iter().enumerate() {
            let i = i.to_string();
            c.shaped(
                host(id, &["desired", "access", &i, "address"]),
                "the access address",
                &a.address,
                safe::address,
                "an IP address or host name",
            );
            if let Some(j) = &a.jump {
                c.shaped(
                    host(id, &["desired", "access", &i, "jump"]),
                    "the jump host",
                    j,
                    safe::host_id,
                    "a host id",
                );
            }
        }
        if let Some(n) = &d.network {
            network(id, n, c);
        }
        if let Some(t) = &d.tailscale {
            c.shaped(
                host(id, &["desired", "tailscale", "hostname"]),
                "the Tailscale hostname",
                &t.hostname,
                safe::hostname,
                "a host name",
            );
        }
        hosts_entries(id, &d.hosts_entries, c);
    }
}

/// `/etc/hosts` lines: an IP address, then host names.
fn hosts_entries(id: &str, entries: &[HostsEntry], c: &mut Check) {
    for (i, e) in entries.iter().enumerate() {
        let i = i.to_string();
        c.shaped(
            host(id, &["desired", "hosts_entries", &i, "address"]),
            "the /etc/hosts address",
            &e.address,
            safe::ip,
            "an IP address",
        );
        for (j, name) in e.names.iter().enumerate() {
            c.shaped(
                host(
                    id,
                    &["desired", "hosts_entries", &i, "names", &j.to_string()],
                ),
                "the /etc/hosts name",
                name,
                safe::hostname,
                "a host name",
            );
        }
    }
}

fn network(id: &str, n: &Network, c: &mut Check) {
    let at = |f: &str| host(id, &["desired", "network", f]);
    c.path(at("file"), "the netplan file", &n.file);
    c.shaped(
        at("interface"),
        "the interface",
        &n.interface,
        safe::name,
        "an interface name",
    );
    c.shaped(
        at("address"),
        "the network address",
        &n.address,
        safe::cidr,
        "an IP address with a prefix length (ADDRESS/PREFIX)",
    );
    c.shaped(
        at("gateway"),
        "the gateway",
        &n.gateway,
        safe::ip,
        "an IP address",
    );
    if let Some(m) = &n.mac {
        c.text(at("mac"), "the MAC address", m, false);
    }
    for (i, ns) in n.nameservers.iter().enumerate() {
        let place = host(id, &["desired", "network", "nameservers", &i.to_string()]);
        c.shaped(place, "a nameserver", ns, safe::ip, "an IP address");
    }
    for (i, s) in n.search.iter().enumerate() {
        let place = host(id, &["desired", "network", "search", &i.to_string()]);
        c.shaped(place, "a search domain", s, safe::hostname, "a domain name");
    }
}

fn compose_values(i: usize, co: &Compose, c: &mut Check) {
    let at = |p: &[&str]| {
        let mut segs = vec!["desired", "compose"];
        segs.extend_from_slice(p);
        stack(i, &segs)
    };
    if c.path(at(&["directory"]), "compose.directory", &co.directory)
        && safe::system_dir(&co.directory)
    {
        c.fail(
            at(&["directory"]),
            format!("compose.directory `{}` is a system directory: apply would create files in it and could hand it to the login user", safe::shown(&co.directory)),
            "give the stack its own directory, e.g. /home/USER/STACK or /opt/STACK",
        );
    }
    if let Some(t) = &co.template {
        c.text(at(&["template"]), "compose.template", t, false);
    }
    if let Some(v) = &co.version {
        c.text(at(&["version"]), "compose.version", v, false);
    }
    for (name, s) in &co.services {
        if !safe::name(name) {
            c.fail(
                stack_key(i, &["desired", "compose", "services", name]),
                format!(
                    "compose service name `{}` is not a safe name",
                    safe::shown(name)
                ),
                "use letters, digits, `-`, `_` and `.`",
            );
        }
        c.shaped(
            at(&["services", name, "image"]),
            "the image",
            &s.image,
            safe::image,
            "an image reference without white space (REGISTRY/NAME:TAG or @sha256:DIGEST)",
        );
        if let Some(ct) = &s.container {
            c.text(
                at(&["services", name, "container"]),
                "the container name",
                ct,
                false,
            );
        }
    }
    for (key, v) in &co.env {
        env_key(i, "env", key, c);
        if let Some(s) = v.as_str() {
            c.text(
                at(&["env", key]),
                &format!("env value `{}`", safe::shown(key)),
                s,
                true,
            );
        }
    }
    for (key, r) in &co.secrets {
        env_key(i, "secrets", key, c);
        c.text(
            at(&["secrets", key, "project"]),
            "the secret's project",
            &r.project,
            false,
        );
        if let Some(p) = &r.path {
            c.path(at(&["secrets", key, "path"]), "the secret's path", p);
        }
    }
}

/// A `.env` key (under `compose.env` or `compose.secrets`): a variable name.
fn env_key(i: usize, section: &str, key: &str, c: &mut Check) {
    if !safe::env_key(key) {
        c.fail(
            stack_key(i, &["desired", "compose", section, key]),
            format!(
                "{section} key `{}` is not a variable name",
                safe::shown(key)
            ),
            "write the key as a variable name: letters, digits and `_`, not starting with a digit",
        );
    }
}

fn cron_job(i: usize, j: usize, job: &CronJob, c: &mut Check) {
    let js = j.to_string();
    let at = |f: &str| stack(i, &["desired", "cron", &js, f]);
    let what = |f: &str| format!("cron job `{}` {f}", safe::shown(&job.id));
    c.text(at("schedule"), &what("schedule"), &job.schedule, true);
    c.text(at("command"), &what("command"), &job.command, true);
    if let Some(d) = &job.description {
        c.text(at("description"), &what("description"), d, true);
    }
    for (k, s) in job.scripts.iter().enumerate() {
        let place = stack(i, &["desired", "cron", &js, "scripts", &k.to_string()]);
        // A relative script is V10's finding; here: what an absolute one hides.
        if c.text(place.clone(), &what("script"), s, false) && s.starts_with('/') {
            c.path(place, &what("script"), s);
        }
    }
}

/// The place of a key in STACK_REGISTRY.yaml.
fn stack_key(index: usize, path: &[&str]) -> Place {
    let idx = index.to_string();
    let mut segs = vec!["stacks", idx.as_str()];
    segs.extend_from_slice(path);
    Place::key(FileKind::Stacks, pointer(segs))
}
