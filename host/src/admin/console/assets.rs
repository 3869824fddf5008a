//! The console's files, compiled into the binary: our own from `console/src/` (plain HTML,
//! CSS and ES modules: no build step), and uPlot from `$OUT_DIR/console/`, fetched by
//! `build.rs` at the version `console/package-lock.json` pins.
//!
//! `TRADEBOX_CONSOLE_DEV=DIR` serves our own files from DIR instead, read at each request, so
//! that the page can be worked on without rebuilding the host. Only file names of the embedded
//! set are served from it, so the variable cannot expose anything else on the machine.

use axum::extract::Path as UrlPath;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

#[derive(rust_embed::RustEmbed)]
#[folder = "../console/src/"]
struct Ours;

#[derive(rust_embed::RustEmbed)]
#[folder = "$OUT_DIR/console/"]
struct Fetched;

/// Why uPlot is missing from this build (empty when it is not).
const MISSING: &str = include_str!(concat!(env!("OUT_DIR"), "/console-missing.txt"));

/// What the browser may do with the page: its own files only, nothing inline, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A file's bytes by its served name (`index.html`, `app.js`, `uPlot.js`, ...).
fn file(name: &str) -> Option<Cow<'static, [u8]>> {
    if let Some(f) = Ours::get(name) {
        if let Some(dir) = std::env::var_os("TRADEBOX_CONSOLE_DEV")
            && let Ok(bytes) = std::fs::read(std::path::Path::new(&dir).join(name))
        {
            return Some(Cow::Owned(bytes));
        }
        return Some(f.data);
    }
    Fetched::get(name).map(|f| f.data)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn serve(name: &str) -> Response {
    if !MISSING.is_empty() {
        let text = format!(
            "This tradebox was built without its console: {MISSING}.\nInstall Node.js 20+ with npm and build it again \
             (cargo build -p tradebox); the admin API itself works without it.\n"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text)
            .into_response();
    }
    match file(name) {
        Some(bytes) => {
            let mut r =
                (StatusCode::OK, [(header::CONTENT_TYPE, content_type(name))], bytes.into_owned()).into_response();
            // Always the files of the binary now serving: a browser must not keep an old page
            // after the host was upgraded.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, "no such file in the console\n").into_response(),
    }
}

/// `GET /`.
pub(in crate::admin) async fn index() -> Response {
    serve("index.html")
}

/// `GET /console/{file}`.
pub(in crate::admin) async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    serve(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_the_charting_library_are_compiled_in() {
        assert!(MISSING.is_empty(), "build.rs could not fetch uPlot: {MISSING}");
        let page = String::from_utf8(file("index.html").expect("index.html").into_owned()).expect("utf-8");
        assert!(page.contains("/console/uPlot.js"), "the page loads uPlot");
        assert!(file("uPlot.js").is_some_and(|f| f.len() > 10_000), "uPlot is embedded");
        assert!(file("base.css").is_some() && file("../Cargo.toml").is_none() && file("nope.js").is_none());
    }
}
