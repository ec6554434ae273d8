//! The dashboard and GraphiQL, built from `web/` into `web/dist/` and
//! embedded in the binary, so one `cargo run --release` serves them and the
//! pages load nothing from any other host.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use include_dir::{Dir, include_dir};

/// Everything `npm run build` wrote into `web/dist/`.
static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web/dist");

/// What the pages may load: only this origin (WebSockets included), no
/// inline scripts, and nobody may frame them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One embedded file, or 404.
fn file(path: &str, cache: &'static str) -> Response {
    let Some(file) = DIST.get_file(path) else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    let mut response = file.contents().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// `GET /`: the dashboard. Revalidated on every load, so a new release
/// shows at once; the hashed assets it names are cached for good.
pub async fn dashboard() -> Response {
    file("index.html", "no-cache")
}

/// GraphiQL, for `GET /graphql` from a browser.
pub fn graphiql() -> Response {
    file("graphiql.html", "no-cache")
}

/// `GET /assets/…`: hashed, so cached for a year.
pub async fn asset(Path(path): Path<String>) -> Response {
    if path.contains("..") {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    file(
        &format!("assets/{path}"),
        "public, max-age=31536000, immutable",
    )
}

/// `GET /favicon.svg`.
pub async fn favicon() -> Response {
    file("favicon.svg", "public, max-age=86400")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_pages_are_embedded() {
        for page in ["index.html", "graphiql.html", "favicon.svg"] {
            assert!(DIST.get_file(page).is_some(), "web/dist/{page} is missing");
        }
    }

    #[test]
    fn the_pages_load_nothing_from_another_host() {
        for page in ["index.html", "graphiql.html"] {
            let html = DIST.get_file(page).and_then(|f| f.contents_utf8()).unwrap();
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{page}"
            );
        }
    }
}
