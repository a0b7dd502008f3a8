//! Infisical's side of the wire: the settings spine logs in with, the JSON
//! shapes it reads, and error texts that never quote a body.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::secrets::Secret;

pub const ENV_URL: &str = "INFISICAL_SITE_URL";
pub const ENV_CLIENT_ID: &str = "INFISICAL_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "INFISICAL_CLIENT_SECRET";

/// Where and as whom to log in.
pub struct Config {
    /// e.g. `https://app.infisical.com`, without `/api` or a trailing slash.
    pub site_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// For each request, connect included.
    pub timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("site_url", &self.site_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// The site URL from `url` or `INFISICAL_SITE_URL`, the credentials from
    /// `INFISICAL_CLIENT_ID` and `INFISICAL_CLIENT_SECRET`.
    pub fn from_env(url: Option<&str>, timeout: Duration) -> Result<Self, String> {
        let url = url.map(str::to_string).or_else(|| var(ENV_URL)).ok_or_else(|| {
            format!("the Infisical site URL is not set: pass --infisical-url URL or set {ENV_URL} (e.g. https://app.infisical.com, or your own server)")
        })?;
        let url = url.trim().trim_end_matches('/');
        let url = url.strip_suffix("/api").unwrap_or(url).to_string();
        crate::secrets::https_or_loopback(&url)
            .map_err(|e| format!("Infisical: {e} (--infisical-url or {ENV_URL})"))?;
        let client_id = var(ENV_CLIENT_ID).ok_or_else(|| {
            format!("{ENV_CLIENT_ID} is not set: the Infisical provider logs in as a machine identity (universal auth client id)")
        })?;
        let client_secret = var(ENV_CLIENT_SECRET).map(Secret::new).ok_or_else(|| {
            format!("{ENV_CLIENT_SECRET} is not set: the universal auth client secret of machine identity {client_id}")
        })?;
        Ok(Config {
            site_url: url,
            client_id,
            client_secret,
            timeout,
        })
    }
}

#[derive(Deserialize)]
pub(super) struct Login {
    #[serde(rename = "accessToken")]
    pub(super) access_token: Secret,
    #[serde(rename = "expiresIn", default)]
    pub(super) expires_in: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct Item {
    #[serde(rename = "secretKey")]
    pub(super) key: String,
    #[serde(rename = "secretValue", default)]
    pub(super) value: Option<Secret>,
}

#[derive(Deserialize)]
pub(super) struct Import {
    #[serde(default)]
    pub(super) secrets: Vec<Item>,
}

#[derive(Deserialize)]
pub(super) struct List {
    pub(super) secrets: Vec<Item>,
    #[serde(default)]
    pub(super) imports: Vec<Import>,
}

/// What went wrong with a JSON body, without quoting it.
pub(super) fn json_problem(e: &serde_json::Error, expected: &str) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "not valid JSON".to_string(),
        Category::Eof => "truncated JSON".to_string(),
        Category::Data => format!("not the expected shape ({expected})"),
        Category::Io => "unreadable".to_string(),
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// The server's `message` from an error body, short; never the body itself.
pub(super) fn server_message(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v.get("message") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => v.get("error").and_then(|e| e.as_str()).map(str::to_string),
        })
        .unwrap_or_else(|| "no message".to_string());
    let short: String = msg.chars().take(200).collect();
    short.replace(['\n', '\r'], " ")
}
