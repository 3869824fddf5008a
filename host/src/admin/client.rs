//! The CLI's side of the admin API: one request to a running host, with errors that say what
//! to do (no host running, wrong token, unknown plugin).

use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Why a request to the host failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The token file is missing or unreadable.
    #[error(
        "cannot read the admin token from {path} ({source}); is a host running (`tradebox run`), and is this its token file?"
    )]
    Token {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing answers at the address.
    #[error("no tradebox host answers at {url} ({reason}); start one with `tradebox run --config FILE`")]
    NotRunning {
        /// The admin URL.
        url: String,
        /// What the connection said.
        reason: String,
    },
    /// The host refused the token.
    #[error("the host at {url} refused the admin token: use the token file of that host (--token-file)")]
    Unauthorized {
        /// The admin URL.
        url: String,
    },
    /// The host answered with an error.
    #[error("the host answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
}

/// Sends `method path` with an optional JSON body to the host at `url`; returns its JSON.
pub async fn request(
    url: &str,
    token_file: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let token = std::fs::read_to_string(token_file)
        .map_err(|source| ClientError::Token { path: token_file.display().to_string(), source })?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::NotRunning { url: url.to_string(), reason: e.to_string() })?;
    let full = format!("{}{}", url.trim_end_matches('/'), path);
    let mut req = match method {
        "POST" => client.post(&full),
        "PUT" => client.put(&full),
        "DELETE" => client.delete(&full),
        _ => client.get(&full),
    }
    .bearer_auth(token.trim());
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ClientError::NotRunning { url: url.to_string(), reason: e.without_url().to_string() })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    match status {
        200..=299 => Ok(json),
        401 => Err(ClientError::Unauthorized { url: url.to_string() }),
        _ => Err(ClientError::Refused {
            status,
            message: json.get("error").and_then(Value::as_str).map_or_else(|| json.to_string(), str::to_string),
        }),
    }
}
