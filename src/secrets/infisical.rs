//! Secrets from Infisical, read as a machine identity.
//!
//! Login: `POST /api/v1/auth/universal-auth/login {clientId, clientSecret}`
//! gives `{accessToken, expiresIn, tokenType}`. Secrets of a project,
//! environment and folder: `GET /api/v4/secrets?projectId=&environment=&secretPath=`
//! (older servers: `/api/v3/secrets/raw?workspaceId=…`, used when v4 answers
//! 404) gives `{secrets: [{secretKey, secretValue}], imports: [{secrets}]}`.
//! A 401 renews the token once. One listing per folder is fetched and kept
//! in memory for the run; so is a failure, so a dead server costs one timeout.
//!
//! Values live only in [`Secret`]s. Error texts never quote a response body
//! (only the server's `message`, scrubbed of the credentials) and never
//! serde's messages (which can quote the input).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::{Provider, Reference, Secret};

mod wire;

use crate::model::InfisicalProject;
pub use wire::{Config, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_URL};
use wire::{List, Login, json_problem, server_message};

/// One folder of one environment of one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Folder {
    /// The registry's name for the project (a key of `infisical_projects`).
    name: String,
    project_id: String,
    environment: String,
    path: String,
    /// Whether values were asked for (`viewSecretValue`).
    values: bool,
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Infisical project {} (id {}, environment {}, path {})",
            self.name, self.project_id, self.environment, self.path
        )
    }
}

type Listing = Arc<BTreeMap<String, Option<Secret>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Unknown,
    V4,
    V3,
}

struct State {
    token: Option<(Secret, Option<Instant>)>,
    api: Api,
    folders: HashMap<Folder, Result<Listing, String>>,
}

/// The Infisical provider. Connects on the first secret asked for.
pub struct Infisical {
    cfg: Config,
    agent: ureq::Agent,
    projects: IndexMap<String, InfisicalProject>,
    state: Mutex<State>,
}

impl fmt::Debug for Infisical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Infisical").field("cfg", &self.cfg).finish()
    }
}

impl Infisical {
    pub fn new(cfg: Config, projects: IndexMap<String, InfisicalProject>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(cfg.timeout.min(Duration::from_secs(5))))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("spine/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Infisical {
            cfg,
            agent,
            projects,
            state: Mutex::new(State {
                token: None,
                api: Api::Unknown,
                folders: HashMap::new(),
            }),
        }
    }

    /// Replace anything secret we hold by `(sensitive)`.
    fn scrub(&self, msg: String, st: &State) -> String {
        let mut out = msg.replace(self.cfg.client_secret.expose(), "(sensitive)");
        if let Some((t, _)) = &st.token
            && !t.expose().is_empty()
        {
            out = out.replace(t.expose(), "(sensitive)");
        }
        out
    }

    fn transport(&self, e: ureq::Error, what: &str) -> String {
        let site = &self.cfg.site_url;
        match e {
            ureq::Error::Timeout(_) => format!(
                "Infisical at {site} did not answer within {:.1}s ({what}): timeout; raise --infisical-timeout if the server is just slow",
                self.cfg.timeout.as_secs_f64()
            ),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
                "cannot reach Infisical at {site} ({what}): connection refused; is the server up? check --infisical-url / {ENV_URL}"
            ),
            ureq::Error::HostNotFound => format!(
                "cannot reach Infisical at {site} ({what}): the name does not resolve; check --infisical-url / {ENV_URL}"
            ),
            other => format!("cannot reach Infisical at {site} ({what}): {other}"),
        }
    }

    fn read(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<(u16, String), String> {
        let mut resp = resp.map_err(|e| self.transport(e, what))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(32 << 20)
            .read_to_string()
            .map_err(|e| self.transport(e, what))?;
        Ok((status, body))
    }

    fn login(&self, st: &mut State) -> Result<Secret, String> {
        let what = "POST /api/v1/auth/universal-auth/login";
        let body = serde_json::json!({
            "clientId": self.cfg.client_id,
            "clientSecret": self.cfg.client_secret.expose(),
        })
        .to_string();
        let resp = self
            .agent
            .post(format!(
                "{}/api/v1/auth/universal-auth/login",
                self.cfg.site_url
            ))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body);
        let (status, text) = self.read(resp, what)?;
        if !(200..300).contains(&status) {
            return Err(self.scrub(format!(
                "Infisical login failed for machine identity {} (HTTP {status}: {}): check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (and the site URL {})",
                self.cfg.client_id, server_message(&text), self.cfg.site_url
            ), st));
        }
        let login: Login = serde_json::from_str(&text).map_err(|e| {
            format!(
                "malformed response from Infisical ({what}): {}",
                json_problem(&e, "{\"accessToken\": \"…\", \"expiresIn\": N}")
            )
        })?;
        if login.access_token.expose().is_empty() {
            return Err(format!(
                "malformed response from Infisical ({what}): empty accessToken"
            ));
        }
        let expiry = login.expires_in.filter(|s| *s > 0).map(|s| {
            Instant::now() + Duration::from_secs(s).saturating_sub(Duration::from_secs(10))
        });
        st.token = Some((login.access_token.clone(), expiry));
        Ok(login.access_token)
    }

    fn token(&self, st: &mut State) -> Result<Secret, String> {
        match &st.token {
            Some((t, exp)) if exp.is_none_or(|e| Instant::now() < e) => Ok(t.clone()),
            _ => self.login(st),
        }
    }

    /// One GET of a folder's secrets with the API version `v3` or not.
    fn get(
        &self,
        f: &Folder,
        token: &Secret,
        v3: bool,
    ) -> Result<(u16, String, &'static str), String> {
        let (path, project) = if v3 {
            ("/api/v3/secrets/raw", "workspaceId")
        } else {
            ("/api/v4/secrets", "projectId")
        };
        let what = if v3 {
            "GET /api/v3/secrets/raw"
        } else {
            "GET /api/v4/secrets"
        };
        let resp = self
            .agent
            .get(format!("{}{path}", self.cfg.site_url))
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Accept", "application/json")
            .query(project, &f.project_id)
            .query("environment", &f.environment)
            .query("secretPath", &f.path)
            .query("include_imports", "true")
            .query("expandSecretReferences", "true")
            .query("viewSecretValue", if f.values { "true" } else { "false" })
            .call();
        let (status, body) = self.read(resp, what)?;
        Ok((status, body, what))
    }

    fn list(&self, st: &mut State, f: &Folder) -> Result<Listing, String> {
        let mut renewed = false;
        let mut v3 = st.api == Api::V3;
        loop {
            let token = self.token(st)?;
            let (status, body, what) = self.get(f, &token, v3)?;
            let msg = || self.scrub(server_message(&body), st);
            match status {
                200..=299 => {
                    st.api = if v3 { Api::V3 } else { Api::V4 };
                    let list: List = serde_json::from_str(&body).map_err(|e| {
                        format!(
                            "malformed response from Infisical ({what}) for {f}: {}",
                            json_problem(
                                &e,
                                "{\"secrets\": [{\"secretKey\": …, \"secretValue\": …}]}"
                            )
                        )
                    })?;
                    let mut out = BTreeMap::new();
                    // The folder's own secrets win over imported ones.
                    for item in list
                        .imports
                        .into_iter()
                        .flat_map(|i| i.secrets)
                        .chain(list.secrets)
                    {
                        out.insert(item.key, item.value);
                    }
                    return Ok(Arc::new(out));
                }
                401 if !renewed => {
                    renewed = true;
                    st.token = None;
                }
                401 => {
                    return Err(format!(
                        "Infisical refused a fresh access token ({what}, HTTP 401: {}); check that machine identity {} may read {f}",
                        msg(),
                        self.cfg.client_id
                    ));
                }
                404 if !v3 && st.api != Api::V4 => v3 = true,
                404 => {
                    return Err(format!(
                        "{f} was not found ({what}, HTTP 404: {}): check project_id, environment and path of infisical_projects.{} in SERVICE_REGISTRY.yaml",
                        msg(),
                        f.name
                    ));
                }
                403 => {
                    return Err(format!(
                        "Infisical denied access to {f} ({what}, HTTP 403: {}): give machine identity {} read access to that environment and path",
                        msg(),
                        self.cfg.client_id
                    ));
                }
                s => {
                    return Err(format!(
                        "Infisical answered HTTP {s} for {f} ({what}): {}",
                        msg()
                    ));
                }
            }
        }
    }

    fn folder(&self, r: &Reference, values: bool) -> Result<Folder, String> {
        let p = self.projects.get(&r.project).ok_or_else(|| {
            format!("unknown secrets project `{}`: it is not under infisical_projects in SERVICE_REGISTRY.yaml", r.project)
        })?;
        let project_id = p.project_id.clone().ok_or_else(|| {
            format!("infisical_projects.{} has no project_id: add the Infisical project id (Project Settings) to SERVICE_REGISTRY.yaml", r.project)
        })?;
        let environment = p.environment.clone().ok_or_else(|| {
            format!(
                "infisical_projects.{} has no environment (e.g. prod) in SERVICE_REGISTRY.yaml",
                r.project
            )
        })?;
        let path = r
            .path
            .clone()
            .or_else(|| p.path.clone())
            .unwrap_or_else(|| "/".into());
        Ok(Folder {
            name: r.project.clone(),
            project_id,
            environment,
            path,
            values,
        })
    }

    /// The folder's listing (fetched once), then the key in it.
    fn lookup(&self, reference: &str, values: bool) -> Result<Option<Secret>, String> {
        let fail = |e: String| format!("secret {reference}: {e}");
        let r = Reference::parse(reference).map_err(fail)?;
        let f = self.folder(&r, values).map_err(fail)?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let listing = match st.folders.get(&f) {
            Some(cached) => cached.clone(),
            None => {
                let got = self.list(&mut st, &f);
                let got = got.map_err(|e| self.scrub(e, &st));
                st.folders.insert(f.clone(), got.clone());
                got
            }
        }
        .map_err(fail)?;
        match listing.get(&r.key) {
            Some(v) => Ok(v.clone()),
            None => {
                let names: Vec<String> = listing.keys().cloned().collect();
                let hint = match crate::diag::suggest(&r.key, &names) {
                    Some(s) => format!(" (did you mean {s}?)"),
                    None => String::new(),
                };
                Err(fail(format!("key {} not found in {f}{hint}", r.key)))
            }
        }
    }
}

impl Provider for Infisical {
    fn fetch(&self, reference: &str) -> Result<Secret, String> {
        match self.lookup(reference, true)? {
            Some(s) => Ok(s),
            None => Err(format!(
                "secret {reference}: malformed response from Infisical: the secret has no secretValue"
            )),
        }
    }

    fn exists(&self, reference: &str) -> Result<(), String> {
        self.lookup(reference, false).map(|_| ())
    }
}
