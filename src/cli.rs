//! The command line, defined once: parsing, `--help`, completions and the man
//! page all come from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
spine verify                          # the registry in ./registry (or the built-in copy)\n  \
spine verify --registry ops/bindings  # any folder holding the three files\n  \
spine verify --format github          # annotations for GitHub Actions\n  \
spine verify --format junit > verify.xml\n  \
spine verify --list-gates             # what each gate checks\n\n\
Exit codes: 0 all gates pass, 1 a gate failed (--strict: or warned), 2 the registry could not be read.")]
    Verify(VerifyArgs),
    /// Render a host's desired files from the registry and templates, for inspection
    #[command(after_help = "Examples:\n  \
spine render immich                 # print every desired file of host `immich`\n  \
spine render immich --out /tmp/r    # write them under /tmp/r/<host>/<path>\n  \
spine render immich --templates my-templates\n\n\
Secrets are never rendered: .env shows `(sensitive)` where a secret goes.")]
    Render(RenderArgs),
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

#[derive(Debug, Args)]
pub struct RegistryArg {
    /// Folder holding SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml and services.health.yaml
    /// [default: ./registry if present, else the registry built into spine]
    #[arg(long, short = 'r', value_name = "DIR", env = "SPINE_REGISTRY")]
    pub registry: Option<PathBuf>,
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
}
