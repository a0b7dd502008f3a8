//! The command line, defined once: parsing, `--help`, completions and the man
//! page all come from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secrets::ProviderKind;
use crate::verify::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "spine",
    version,
    about = "Make the homelab registries executable: verify, plan, apply, with signed receipts",
    long_about = "spine reads the operator's registries (SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml, \
services.health.yaml), checks them, renders each host's desired state, compares it with the host \
over SSH, and applies the difference safely.",
    after_help = "Exit codes: 0 success, 1 checks failed / changes failed, 2 could not run.\n\
Run `spine COMMAND --help` for examples."
)]
pub struct Cli {
    /// When to colour output (auto: only on a terminal and without NO_COLOR)
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    /// Print only failures and the summary
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the registries offline: schemas, references, cross-file facts (the CI gate)
    #[command(after_help = "Examples:\n  \
spine verify                          # the operator's repository holding this folder (or ./registry)\n  \
spine verify --repo ~/code/agentic-spine  # docs/governance/ + ops/bindings/\n  \
spine verify --registry registry      # one folder holding the three files\n  \
spine verify --builtin                # the registry built into spine\n  \
spine verify --format github          # annotations for GitHub Actions\n  \
spine verify --format junit > verify.xml\n  \
spine verify --list-gates             # what each gate checks\n\n\
Exit codes: 0 all gates pass, 1 a gate failed (--strict: or warned), 2 the registry could not be read\n\
or was not found (it says what it looked for).")]
    Verify(VerifyArgs),
    /// Render a host's desired files from the registry and templates, for inspection
    #[command(after_help = "Examples:\n  \
spine render immich                 # print every desired file of host `immich`\n  \
spine render immich --out /tmp/r    # write them under /tmp/r/<host>/<path>\n  \
spine render immich --templates my-templates\n\n\
Secrets are never rendered: .env shows `(sensitive)` where a secret goes.")]
    Render(RenderArgs),
    /// Compare each host with its desired state over SSH and show the changes
    #[command(after_help = "Examples:\n  \
spine plan                              # every host with a `desired` section\n  \
spine plan immich -o immich.plan        # save the plan for `spine apply immich.plan`\n  \
spine plan --format json | jq .summary\n  \
spine plan --detailed-exitcode          # for scripts: 0 converged, 2 changes, 3 only unknowns\n\n\
Facts are read in one SSH round trip per host, hosts in parallel. Host keys are checked strictly.\n\
Exit codes: 0 plan made; 2 the registry is not usable. With --detailed-exitcode: 0 converged,\n\
1 error, 2 changes to make, 3 nothing to change but some state unknown.")]
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply (asks first on a terminal)
    #[command(after_help = "Examples:\n  \
spine plan immich -o immich.plan && spine apply immich.plan\n  \
spine apply immich                     # plan, show, ask, apply\n  \
spine apply --yes                      # every host, no question (automation)\n  \
spine apply immich.plan --confirm-timeout 90\n  \
spine apply immich --restart-vms       # also restart VMs whose cloud-init network changed (asks per VM)\n\n\
Before touching a host spine takes its lock and reads it again: if the facts differ from the\n\
plan's, it refuses (stale plan). Files are written atomically; what they replace is kept in\n\
/var/lib/spine/backups/RUN_ID on the host. A network change is confirmed over a fresh SSH\n\
connection to the new address, or the host rolls it back by itself.\n\
Exit codes: 0 everything applied and converged (or nothing to do), 1 something failed, was\n\
rolled back or interrupted, 2 could not run (bad plan file, registry, refused without --yes).")]
    Apply(ApplyArgs),
    /// Break a host's lock left by a run that is gone (only once it has expired, or with --force)
    #[command(
        after_help = "Example:\n  spine unlock immich 20261123T101502.123Z-4f2a9c0d1e2b-immich\n\n\
The lock id is printed by the apply that was refused."
    )]
    Unlock(UnlockArgs),
    /// List, show and check the signed, hash-chained run receipts
    #[command(
        subcommand,
        after_help = "Examples:\n  \
spine receipts list\n  \
spine receipts show 42              # by sequence number, run id (prefix) or file name\n  \
spine receipts check                # signatures, schema, chain; exit 1 on any problem\n  \
spine receipts check --require-signed --format json\n\n\
An auditor needs only OpenSSH: see docs/receipts.md."
    )]
    Receipts(ReceiptsCommand),
    /// Try every access path of a host step by step and say why the failing ones fail
    #[command(after_help = "Examples:\n  \
spine doctor immich                       # every path of host `immich`, one connection each\n  \
spine doctor immich --ssh-config lab.cfg  # with another ssh_config\n  \
spine doctor immich --format json | jq '.paths[] | {describe, works}'\n\n\
Per path: DNS, TCP connect, SSH banner, host key, auth, and a command (`uname -srm`), each\n\
classified (name does not resolve, refused, timeout, unreachable, host key, auth). For a VM\n\
with a Proxmox host it reads `qm config VMID` there and compares ipconfig0 with the registry;\n\
over a path that works it reads the host's Tailscale state and addresses.\n\
Exit codes: 0 some path works, 1 no path works, 2 could not run (registry, unknown host).")]
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:\n  \
spine completions bash > ~/.local/share/bash-completion/completions/spine\n  \
spine completions zsh > \"${fpath[1]}/_spine\"\n  \
spine completions fish > ~/.config/fish/completions/spine.fish")]
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line definition
    #[command(after_help = "Examples:\n  \
spine man | man -l -                     # read it now\n  \
spine man plan | man -l -                # the page of one command (spine-plan(1))\n  \
spine man --out /usr/local/share/man/man1  # write spine.1 and one page per command")]
    Man(ManArgs),
    /// Check the services.health endpoints (read-only GETs, in parallel)
    #[command(after_help = "Examples:\n  \
spine health                          # every endpoint in services.health.yaml\n  \
spine health --host immich            # the endpoints of one host\n  \
spine health --id immich-ping --format json\n\n\
Statuses: OK, DEGRADED (slow or unexpected body), TIMEOUT, REFUSED, FAIL, SKIP (disabled).\n\
Exit codes: 0 every checked endpoint OK, 1 any was not, 2 no endpoint matches the filter\n\
(or the registry cannot be read).")]
    Health(HealthArgs),
    /// Read what runs on a host and write the registry sections that describe it (read-only on the host)
    #[command(after_help = "Examples:\n  \
spine import infra-core --dry-run       # show what it would write, a diff per file; write nothing\n  \
spine import infra-core                 # write the sections and ops/staged/<stack>/docker-compose.yml\n  \
spine import infra-core --repo ~/code/agentic-spine --ssh-config lab.cfg\n\n\
Reads over one SSH connection: compose projects (`docker compose ls`), their compose files, the key\n\
names of their .env (values only for keys that cannot be secret), the crontabs of the login user and\n\
root, the netplan file, the Tailscale name; for a VM, `qm config` on its Proxmox host. Writes the\n\
host's `desired:` section (SERVICE_REGISTRY), each stack's (STACK_REGISTRY: the matching entry, or a\n\
new one) as added lines only, and the compose files. Secret keys become references to fill in\n\
Infisical; cron jobs are proposed commented out. Then review, `spine plan HOST`, commit.\n\
Exit codes: 0 written (or shown with --dry-run), 2 could not run (unknown or unreachable host, a\n\
file changed meanwhile, a value import refuses); nothing is written then.")]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Host id from SERVICE_REGISTRY.yaml
    pub host: String,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Print what would be written (a diff per file) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub receipt: ReceiptArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Host id from SERVICE_REGISTRY.yaml
    pub host: String,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Print the page of this command instead of spine(1)
    pub command: Option<String>,
    /// Write spine.1 and spine-COMMAND.1 for every command into DIR
    #[arg(long, short = 'o', value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Only the endpoints of this host id (repeatable)
    #[arg(long, value_name = "HOST")]
    pub host: Vec<String>,
    /// Only the endpoint with this id (repeatable)
    #[arg(long, value_name = "ID")]
    pub id: Vec<String>,
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    #[command(flatten)]
    pub receipt: ReceiptArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file from `spine plan -o FILE`, or host ids to plan and apply now
    /// (default: every host with a `desired` section)
    pub target: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Do not ask for confirmation (needed without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow changes to bonds and bridges
    #[arg(long)]
    pub force: bool,
    /// Seconds a network change waits for a fresh connection before the host rolls back
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub confirm_timeout: u64,
    /// Seconds compose waits for containers to be running and healthy, and a
    /// restarted VM (--restart-vms) may take to come back on its access paths
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub wait_timeout: u64,
    /// Restart VMs whose cloud-init network changed, from their Proxmox host
    /// (qm cloudinit update; qm reboot, or qm shutdown then qm stop after the
    /// timeout; qm start); asks per VM on a terminal, --yes answers
    #[arg(long)]
    pub restart_vms: bool,
    /// Seconds after which a lock left by a vanished run may be broken
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub lock_ttl: u64,
    /// Backup folders kept on each host (/var/lib/spine/backups, root only):
    /// those of the last N runs, this one included; older ones are removed
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_backups: u32,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    #[command(flatten)]
    pub receipt: ReceiptArgs,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Host id
    pub host: String,
    /// The lock id, as the refused apply printed it; leave it out to clear
    /// a lock without info (left by a run that died while taking it)
    pub lock_id: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Break the lock even though it has not expired yet
    #[arg(long)]
    pub force: bool,
    /// Seconds after which a lock without info counts as expired (its age
    /// is its file's age on the host)
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub lock_ttl: u64,
}

/// Where receipts go and how they are signed (every verify/plan/apply run writes one).
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// Receipts folder [default: `receipts/` at the repository root, or beside a --registry folder]
    #[arg(long, value_name = "DIR", env = "SPINE_RECEIPTS")]
    pub receipts: Option<PathBuf>,
    /// SSH key that signs the receipt (private key, or a .pub whose key is in ssh-agent)
    /// [default: SPINE_SIGNING_KEY, else the first ed25519 key in ssh-agent, else unsigned]
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
    /// Loop this run belongs to (LOOP-<NAME>-YYYYMMDD), recorded in the receipt
    #[arg(long = "loop", value_name = "LOOP_ID")]
    pub loop_id: Option<String>,
    /// Gap this run works on (GAP-OP-NNN), recorded in the receipt
    #[arg(long = "gap", value_name = "GAP_ID")]
    pub gap_id: Option<String>,
}

/// Where secret values come from (plan hashes them, apply writes them, verify --secrets checks names).
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// Secrets provider: `env` reads SPINE_SECRET_<PROJECT>_<KEY>; `infisical` logs in as a
    /// machine identity (INFISICAL_CLIENT_ID / INFISICAL_CLIENT_SECRET)
    #[arg(long, value_enum, value_name = "PROVIDER", env = "SPINE_SECRETS_PROVIDER", default_value_t = ProviderKind::Env)]
    pub secrets_provider: ProviderKind,
    /// Infisical site URL, e.g. https://app.infisical.com or your own server
    #[arg(long, value_name = "URL", env = "INFISICAL_SITE_URL")]
    pub infisical_url: Option<String>,
    /// Seconds to wait for each Infisical request (connect included)
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_secs)]
    pub infisical_timeout: f64,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 3600"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// One line per receipt: sequence, run id, command, status, signed or not
    #[command(
        after_help = "Examples:\n  spine receipts list\n  spine receipts list --receipts /srv/spine/receipts"
    )]
    List(ReceiptsDir),
    /// Print one receipt (its exact stored JSON)
    #[command(
        after_help = "Examples:\n  spine receipts show 42\n  spine receipts show 20261123T1015 | jq .body.hosts"
    )]
    Show {
        /// Sequence number, run id (or a prefix of it) or file name
        id: String,
        #[command(flatten)]
        dir: ReceiptsDir,
    },
    /// Check every signature, the schema and the chain; report the first broken link
    /// (`verify` is kept as another name for it)
    #[command(
        visible_alias = "verify",
        after_help = "Examples:\n  spine receipts check\n  spine receipts check --require-signed --format json\n  \
spine receipts check --allowed-signers ~/audit/allowed_signers --expect-head HASH  # the auditor's check\n\n\
Exit codes: 0 the chain is intact, 1 a problem was found, 2 could not run.\n\
Without spine: see docs/receipts.md for the `ssh-keygen -Y verify` one-liner."
    )]
    Check {
        #[command(flatten)]
        dir: ReceiptsDir,
        /// An unsigned receipt is an error, not a warning
        #[arg(long)]
        require_signed: bool,
        /// The trust anchor: an allowed_signers file kept outside the receipts folder (a
        /// reviewed copy) [default: the folder's own allowed_signers, with a warning]
        #[arg(long, value_name = "FILE", env = "SPINE_ALLOWED_SIGNERS")]
        allowed_signers: Option<PathBuf>,
        /// SHA-256 of the head receipt pinned earlier (printed by check as `head N sha256
        /// HASH`): it must still be in the chain, so receipts removed from the end are caught
        #[arg(long, value_name = "HASH", value_parser = sha256_hex)]
        expect_head: Option<String>,
        /// Output format
        #[arg(long, short = 'f', value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
}

/// A SHA-256 in hex (64 digits; `sha256:` prefix and upper case accepted).
fn sha256_hex(s: &str) -> Result<String, String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s).to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err("expected the head's SHA-256: 64 hex digits, as `spine receipts check` prints after `sha256`".into())
    }
}

#[derive(Debug, Args)]
pub struct ReceiptsDir {
    /// Receipts folder
    #[arg(
        long,
        value_name = "DIR",
        env = "SPINE_RECEIPTS",
        default_value = "receipts"
    )]
    pub receipts: PathBuf,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// ssh_config file to use (ssh -F); the default is ~/.ssh/config
    #[arg(long, value_name = "FILE", env = "SPINE_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// Seconds to wait for each SSH connection, per hop (a path through a jump host gets twice this)
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5,
        env = "SPINE_CONNECT_TIMEOUT"
    )]
    pub connect_timeout: u64,
    /// Hosts to read at the same time
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub parallel: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Host ids (default: every host with a `desired` section)
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Output format (JSON: schemas/plan.schema.json)
    #[arg(long, short = 'f', value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Save the plan to FILE for `spine apply FILE`
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 converged, 1 error, 2 changes, 3 unknowns and nothing else
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Do not check the services.health endpoints beside the hosts
    #[arg(long)]
    pub no_health: bool,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    #[command(flatten)]
    pub receipt: ReceiptArgs,
}

#[derive(Debug, Args)]
pub struct TemplatesArg {
    /// Folder overriding the built-in templates (same relative names as templates/)
    #[arg(long, value_name = "DIR", env = "SPINE_TEMPLATES")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Host id from SERVICE_REGISTRY.yaml (default: every host with a `desired` section)
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Write the files under DIR/<host>/<path> instead of printing them
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Which registry files to read. With none of these options: the operator's
/// repository holding the working directory, else `./registry`.
#[derive(Debug, Args)]
pub struct RegistryArg {
    /// The operator's repository: docs/governance/ holds SERVICE_REGISTRY.yaml and
    /// STACK_REGISTRY.yaml, ops/bindings/ holds services.health.yaml and the bindings
    /// (ssh.targets, vm.lifecycle, secrets.binding, docker.compose.targets)
    /// [default: the repository holding the working directory]
    #[arg(long, value_name = "DIR", env = "SPINE_REPO")]
    pub repo: Option<PathBuf>,
    /// One folder holding SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml and services.health.yaml
    /// (and, when present, the bindings); wins over --repo
    #[arg(long, short = 'r', value_name = "DIR", env = "SPINE_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Use the registry built into spine (never used unless asked for)
    #[arg(long)]
    pub builtin: bool,
    /// This file instead of SERVICE_REGISTRY.yaml
    #[arg(long, value_name = "FILE")]
    pub service_registry: Option<PathBuf>,
    /// This file instead of STACK_REGISTRY.yaml
    #[arg(long, value_name = "FILE")]
    pub stack_registry: Option<PathBuf>,
    /// This file instead of services.health.yaml
    #[arg(long, value_name = "FILE")]
    pub services_health: Option<PathBuf>,
    /// This file instead of ssh.targets.yaml (host ids, LAN addresses, users)
    #[arg(long, value_name = "FILE")]
    pub ssh_targets: Option<PathBuf>,
    /// This file instead of vm.lifecycle.yaml (VM ids)
    #[arg(long, value_name = "FILE")]
    pub vm_lifecycle: Option<PathBuf>,
    /// This file instead of secrets.binding.yaml (Infisical environment and base path)
    #[arg(long, value_name = "FILE")]
    pub secrets_binding: Option<PathBuf>,
    /// This file instead of docker.compose.targets.yaml (compose folders found on each host)
    #[arg(long, value_name = "FILE")]
    pub compose_targets: Option<PathBuf>,
}

impl RegistryArg {
    /// What to load, as the loader understands it.
    pub fn request(&self) -> crate::load::Request {
        use crate::diag::FileKind;
        let files = [
            (FileKind::Services, &self.service_registry),
            (FileKind::Stacks, &self.stack_registry),
            (FileKind::Health, &self.services_health),
            (FileKind::SshTargets, &self.ssh_targets),
            (FileKind::VmLifecycle, &self.vm_lifecycle),
            (FileKind::SecretsBinding, &self.secrets_binding),
            (FileKind::ComposeTargets, &self.compose_targets),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.clone().map(|p| (k, p)))
        .collect();
        crate::load::Request {
            builtin: self.builtin,
            registry: self.registry.clone(),
            repo: self.repo.clone(),
            files,
        }
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat warnings as failures
    #[arg(long)]
    pub strict: bool,
    /// List the gates with what each checks, and exit
    #[arg(long)]
    pub list_gates: bool,
    /// Also check that every referenced secret exists in the provider (gate V15; names only)
    #[arg(long)]
    pub secrets: bool,
    #[command(flatten)]
    pub provider: SecretsArgs,
    #[command(flatten)]
    pub receipt: ReceiptArgs,
}
