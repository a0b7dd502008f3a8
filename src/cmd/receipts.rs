//! `spine receipts list | show | check`: the auditor's side of stage 6.

use super::{Error, Global, emit, exit};
use crate::cli::{PlanFormat, ReceiptsCommand};
use crate::receipt::{CheckOptions, Store};

pub fn run(cmd: &ReceiptsCommand, g: Global) -> Result<u8, Error> {
    match cmd {
        ReceiptsCommand::List(dir) => list(&dir.receipts),
        ReceiptsCommand::Show { id, dir } => show(&dir.receipts, id),
        ReceiptsCommand::Check {
            dir,
            require_signed,
            allowed_signers,
            expect_head,
            format,
        } => {
            let opts = CheckOptions {
                require_signed: *require_signed,
                allowed_signers: allowed_signers.clone(),
                expect_head: expect_head.clone(),
            };
            check(&dir.receipts, &opts, *format, g)
        }
    }
}

fn open(dir: &std::path::Path) -> Result<Store, Error> {
    if !dir.is_dir() {
        return Err(Error::msg(format!(
            "no receipts folder at {} (pass --receipts DIR)",
            dir.display()
        )));
    }
    Ok(Store::open(dir)?)
}

fn list(dir: &std::path::Path) -> Result<u8, Error> {
    let store = open(dir)?;
    let entries = store.list()?;
    let mut out = String::from(
        "SEQ     RUN ID                              COMMAND  STATUS      SIGNED  FINISHED\n",
    );
    for e in &entries {
        let signed = if e.signature.is_some() { "yes" } else { "no" };
        match &e.receipt {
            Ok(r) => out.push_str(&format!(
                "{:<7} {:<35} {:<8} {:<11} {:<7} {}\n",
                e.sequence,
                e.run_id,
                r.command.as_str(),
                format!("{:?}", r.status).to_lowercase(),
                signed,
                r.finished_at
            )),
            Err(why) => out.push_str(&format!(
                "{:<7} {:<35} (unreadable: {why})\n",
                e.sequence, e.run_id
            )),
        }
    }
    out.push_str(&format!(
        "{} receipts in {}\n",
        entries.len(),
        dir.display()
    ));
    code(emit(&out), exit::OK)
}

fn show(dir: &std::path::Path, id: &str) -> Result<u8, Error> {
    let store = open(dir)?;
    let r = store
        .show(id)
        .map_err(|e| Error::from(e).with_code(exit::FAILED))?;
    code(emit(&String::from_utf8_lossy(&r.bytes)), exit::OK)
}

fn check(
    dir: &std::path::Path,
    opts: &CheckOptions,
    format: PlanFormat,
    g: Global,
) -> Result<u8, Error> {
    let store = open(dir)?;
    let report = store.check(opts)?;
    let result = if report.is_ok() {
        exit::OK
    } else {
        exit::FAILED
    };
    let text = match format {
        PlanFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        PlanFormat::Text => {
            let mut s = String::new();
            for p in &report.problems {
                let level = format!("{:?}", p.severity).to_lowercase();
                s.push_str(&format!("{level}: {p}\n"));
            }
            match &report.allowed_signers {
                Some(a) => s.push_str(&format!("allowed_signers: {}\n", a.display())),
                None => s.push_str("allowed_signers: none read\n"),
            }
            if let Some(p) = report.first_broken_problem() {
                s.push_str(&format!("first broken link: {p}\n"));
            }
            s.push_str(&format!(
                "receipts: {} ({} signed, {} unsigned); {}\n",
                report.receipts,
                report.signed,
                report.unsigned,
                match &report.head {
                    Some(h) => format!("head {} sha256 {}", h.sequence, h.sha256),
                    None => "no receipts".into(),
                }
            ));
            s.push_str(if result == exit::OK {
                "status: OK\n"
            } else {
                "status: FAIL\n"
            });
            s
        }
    };
    let _ = g;
    code(emit(&text), result)
}

fn code(r: Result<(), Error>, c: u8) -> Result<u8, Error> {
    r?;
    Ok(c)
}
