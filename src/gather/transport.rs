//! The seam between spine and ssh. Gather and apply talk to a [`Conn`] made
//! by a [`Connect`], never to openssh directly, so apply's steps have unit
//! tests without hosts. [`Ssh`] is the real one (openssh, the system ssh).

use std::future::Future;

use openssh::Session;
use tokio::io::AsyncWriteExt;

use super::ssh::{self, PathFailure, Route, SshOptions};

/// What a script printed, and its exit status (-1: killed by a signal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// One open connection to a host.
pub trait Conn: Send + Sync + 'static {
    /// Run `script` (sent on stdin) with `sh -s`, through `sudo -n` when
    /// `sudo`. `Err` when it could not be run at all (the connection broke).
    fn run(&self, script: &str, sudo: bool) -> impl Future<Output = Result<Ran, String>> + Send;

    /// Close the connection (errors do not matter any more).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Opens connections: the first of `routes` that works.
pub trait Connect: Clone + Send + Sync + 'static {
    type Conn: Conn;

    fn connect(
        &self,
        routes: &[Route],
        opts: &SshOptions,
    ) -> impl Future<Output = Result<(Self::Conn, Route), Vec<PathFailure>>> + Send;
}

/// The real transport: openssh over the system ssh.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ssh;

impl Connect for Ssh {
    type Conn = Session;

    async fn connect(
        &self,
        routes: &[Route],
        opts: &SshOptions,
    ) -> Result<(Session, Route), Vec<PathFailure>> {
        ssh::connect(routes, opts).await
    }
}

impl Conn for Session {
    async fn run(&self, script: &str, sudo: bool) -> Result<Ran, String> {
        let mut cmd = if sudo {
            let mut c = self.command("sudo");
            c.args(["-n", "sh", "-s"]);
            c
        } else {
            let mut c = self.command("sh");
            c.arg("-s");
            c
        };
        let mut child = cmd
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| ssh::error_text(&e))?;
        if let Some(mut stdin) = child.stdin().take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            stdin.shutdown().await.map_err(|e| e.to_string())?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| ssh::error_text(&e))?;
        Ok(Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        })
    }

    async fn close(self) {
        let _ = Session::close(self).await;
    }
}
