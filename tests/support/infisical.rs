//! A **stand-in** for an Infisical server, on loopback, for tests: the three
//! endpoints spine uses, with the request and response shapes Infisical
//! documents, and switches for the failure cases.
//!
//! - `POST /api/v1/auth/universal-auth/login {clientId, clientSecret}` ->
//!   `{accessToken, expiresIn, accessTokenMaxTTL, tokenType: "Bearer"}`; bad
//!   credentials -> 401 `{statusCode, message, error}`.
//! - `GET /api/v4/secrets?projectId&environment&secretPath&viewSecretValue&include_imports`
//!   (Bearer) -> `{secrets: [{id, _id, workspace, environment, version, type,
//!   secretKey, secretValue, secretValueHidden, secretComment, secretPath, tags,
//!   createdAt, updatedAt}], imports: [{secretPath, environment, folderId, secrets}]}`;
//!   unknown project or folder -> 404; bad token -> 401.
//! - `GET /api/v3/secrets/raw?workspaceId&…`: the same, for older servers.
//!   With `v4: false` the v4 route does not exist (Fastify's 404).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

pub const CLIENT_ID: &str = "5a1c7e0e-0b7d-4c6e-9a51-2f0c1d3b4e5f";
pub const CLIENT_SECRET: &str = "cs.7f3a9b2c4d5e6f708192a3b4c5d6e7f8091a2b3c";
pub const PROJECT_ID: &str = "65f0a1b2c3d4e5f601234567";

/// One folder of one environment of one project.
#[derive(Debug, Clone)]
pub struct Folder {
    pub project_id: String,
    pub environment: String,
    pub path: String,
    pub secrets: BTreeMap<String, String>,
    /// Folders imported into this one: `(path, secrets)`.
    pub imports: Vec<(String, BTreeMap<String, String>)>,
}

impl Folder {
    pub fn new(path: &str, secrets: &[(&str, &str)]) -> Folder {
        Folder {
            project_id: PROJECT_ID.into(),
            environment: "prod".into(),
            path: path.into(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            imports: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Whether `/api/v4/secrets` exists (false: an older server).
    pub v4: bool,
    /// Delay before every secrets answer.
    pub delay: Duration,
    /// Answer secrets requests with a broken body.
    pub malformed: bool,
    /// Reject the first access token issued (as if it expired at once).
    pub revoke_first_token: bool,
    /// Whether `viewSecretValue=false` hides values (older servers ignore it).
    pub honour_view_secret_value: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            v4: true,
            delay: Duration::ZERO,
            malformed: false,
            revoke_first_token: false,
            honour_view_secret_value: true,
        }
    }
}

#[derive(Default)]
struct State {
    issued: Vec<String>,
    valid: Vec<String>,
}

pub struct Infisical {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

/// A body that breaks JSON midway; it carries a value that must never be
/// quoted in an error.
pub const MALFORMED_BODY: &str =
    r#"{"secrets": [{"secretKey": "DB_PASSWORD", "secretValue": "LeakedFromBrokenBody77"#;

fn error(status: u16, error: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"reqId": "req-standin", "statusCode": status, "message": message, "error": error}),
    )
}

fn items(f: &Folder, secrets: &BTreeMap<String, String>, path: &str, show: bool) -> Vec<Value> {
    secrets
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let id = format!("{:024x}", i + 1);
            json!({
                "id": id, "_id": id, "workspace": f.project_id, "environment": f.environment,
                "version": 1, "type": "shared", "secretKey": k,
                "secretValue": if show { v.as_str() } else { "<hidden-by-infisical>" },
                "secretValueHidden": !show, "secretComment": "", "secretPath": path,
                "tags": [], "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
            })
        })
        .collect()
}

impl Infisical {
    pub fn start(folders: Vec<Folder>, opts: Options) -> Infisical {
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let counter = AtomicUsize::new(0);
        let server = Server::start(move |req: &Request| {
            let mut st = st.lock().unwrap();
            match (req.method.as_str(), req.path.as_str()) {
                ("POST", "/api/v1/auth/universal-auth/login") => {
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    if body["clientId"] != CLIENT_ID || body["clientSecret"] != CLIENT_SECRET {
                        return error(401, "UnauthorizedError", "Invalid credentials");
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let token = format!(
                        "eyJhbGciOiJIUzI1NiJ9.standin{n}.{:x}",
                        std::process::id() as u64 * 7919 + n as u64
                    );
                    st.issued.push(token.clone());
                    if !(opts.revoke_first_token && n == 1) {
                        st.valid.push(token.clone());
                    }
                    Response::json(
                        200,
                        json!({"accessToken": token, "expiresIn": 7200, "accessTokenMaxTTL": 43200, "tokenType": "Bearer"}),
                    )
                }
                ("GET", "/api/v4/secrets") if !opts.v4 => error(
                    404,
                    "Not Found",
                    &format!("Route GET:{} not found", req.path),
                ),
                ("GET", "/api/v4/secrets" | "/api/v3/secrets/raw") => {
                    let token = req
                        .headers
                        .get("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "));
                    if !token.is_some_and(|t| st.valid.iter().any(|v| v == t)) {
                        return error(401, "UnauthorizedError", "Token invalid or expired");
                    }
                    let id_param = if req.path.contains("v4") {
                        "projectId"
                    } else {
                        "workspaceId"
                    };
                    let q = |k: &str| req.query.get(k).cloned().unwrap_or_default();
                    let (pid, env) = (q(id_param), q("environment"));
                    let path = req
                        .query
                        .get("secretPath")
                        .cloned()
                        .unwrap_or_else(|| "/".into());
                    if !folders.iter().any(|f| f.project_id == pid) {
                        return error(
                            404,
                            "NotFound",
                            &format!("Project with ID '{pid}' not found"),
                        );
                    }
                    let Some(f) = folders
                        .iter()
                        .find(|f| f.project_id == pid && f.environment == env && f.path == path)
                    else {
                        return error(
                            404,
                            "NotFound",
                            &format!(
                                "Folder with path '{path}' in environment with slug '{env}' not found"
                            ),
                        );
                    };
                    if opts.malformed {
                        return Response::raw(200, MALFORMED_BODY.as_bytes(), "application/json")
                            .after(opts.delay);
                    }
                    let show = !(opts.honour_view_secret_value && q("viewSecretValue") == "false");
                    let imports: Vec<Value> = f.imports.iter().map(|(p, s)| json!({
                        "secretPath": p, "environment": f.environment, "folderId": "f-import",
                        "secrets": items(f, s, p, show),
                    })).collect();
                    Response::json(
                        200,
                        json!({"secrets": items(f, &f.secrets, &f.path, show), "imports": imports}),
                    )
                    .after(opts.delay)
                }
                _ => error(
                    404,
                    "Not Found",
                    &format!("Route {}:{} not found", req.method, req.path),
                ),
            }
        });
        Infisical { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every access token handed out.
    pub fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }
}
