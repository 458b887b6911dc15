//! `getConsole` and `getConsoleAsset` (openapi.yaml; README, "The console"): the console
//! function's handler serves the page and its content-hashed assets with the
//! Content-Security-Policy, `nosniff`, `no-referrer`, their caching and `ETag`s, answers an
//! `If-None-Match` naming the `ETag` with 304, and anything else under `/console/` with the
//! error envelope's 404.

use e2e::{assert_error, finish, Reply};
use lambda_http::http::{Method, StatusCode};
use lambda_http::Body;

/// The policy the issue asks for, word for word.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// An API Gateway stage's prefix, as a named stage puts it before every path.
const STAGE: &str = "/prod";

/// `GET path` with `headers`, as API Gateway hands it to the function.
async fn get(path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri(format!("https://api.test{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::Empty).expect("a request");
    // Recorded for the OpenAPI check under the path openapi.yaml documents, without the stage.
    let documented = path.strip_prefix(STAGE).unwrap_or(path);
    finish("GET", documented, console::handle(request).await)
}

/// The headers every answer of the console carries, whatever it is.
fn assert_protected(reply: &Reply) {
    assert_eq!(reply.header("content-security-policy"), Some(POLICY));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert!(reply
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
}

/// A strong `ETag`: a quoted hash.
fn assert_etag(reply: &Reply) -> String {
    let etag = reply.header("etag").expect("an ETag").to_owned();
    assert!(
        etag.len() == 18
            && etag.starts_with('"')
            && etag.ends_with('"')
            && etag[1..17].bytes().all(|b| b.is_ascii_hexdigit()),
        "{etag}"
    );
    etag
}

/// The asset paths the page names (`console/<version>/<name>`, relative to `/console`), as
/// absolute paths.
fn assets_named_by(page: &str) -> Vec<String> {
    let mut found: Vec<String> = page
        .match_indices("\"console/")
        .map(|(at, _)| {
            let rest = &page[at + 1..];
            format!("/{}", &rest[..rest.find('"').expect("a closing quote")])
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn the_page_is_served_under_the_policy_and_revalidated_every_time() {
    for path in ["/console".to_owned(), format!("{STAGE}/console")] {
        let path = path.as_str();
        let page = get(path, &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_protected(&page);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        assert_etag(&page);
        assert!(
            page.text
                .contains("<title>WhatsApp sandbox console</title>"),
            "{}",
            page.text
        );
        // Nothing the policy would refuse, and no placeholder left unreplaced.
        assert!(!page.text.contains("%ASSETS%"), "{}", page.text);
        assert!(!page.text.contains(" style="), "{}", page.text);
    }
}

#[tokio::test]
async fn every_asset_the_page_names_is_served_immutable_under_its_content_hash() {
    let page = get("/console", &[]).await;
    let assets = assets_named_by(&page.text);
    let names: Vec<&str> = assets.iter().filter_map(|a| a.rsplit('/').next()).collect();
    for expected in ["app.js", "style.css", "icon.svg"] {
        assert!(names.contains(&expected), "{assets:?}");
    }
    // Every asset under one version, which is this build's.
    let version = format!("/console/{}/", console::VERSION);
    assert!(assets.iter().all(|a| a.starts_with(&version)), "{assets:?}");
    // The page names some assets; the modules import the others: every one is served.
    let all = console::ASSETS
        .iter()
        .map(|f| format!("{version}{}", f.name));
    for path in assets.iter().cloned().chain(all) {
        let asset = get(&path, &[]).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}: {}", asset.text);
        assert_protected(&asset);
        assert_eq!(asset.header("cache-control"), Some(IMMUTABLE), "{path}");
        assert_etag(&asset);
        let expected = match path.rsplit_once('.').map(|(_, ext)| ext) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("{path}: an asset of an unexpected kind {other:?}"),
        };
        assert_eq!(asset.header("content-type"), Some(expected), "{path}");
        assert!(!asset.text.is_empty(), "{path}");
    }
    // Under a stage prefix, the same relative names resolve and are served.
    let staged = get(&format!("{STAGE}{}", assets[0]), &[]).await;
    assert_eq!(staged.status, StatusCode::OK);
}

#[tokio::test]
async fn an_if_none_match_naming_the_etag_is_answered_304_without_a_body() {
    let app_js = format!("/console/{}/app.js", console::VERSION);
    for (path, cache) in [("/console", "no-cache"), (app_js.as_str(), IMMUTABLE)] {
        let first = get(path, &[]).await;
        let etag = assert_etag(&first);
        let weak = format!("W/{etag}");
        let listed = format!("\"0000000000000000\", {etag}");
        for naming in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let again = get(path, &[("if-none-match", naming)]).await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path} {naming}");
            assert!(again.text.is_empty(), "{path}: {}", again.text);
            assert_eq!(again.header("etag"), Some(etag.as_str()));
            assert_eq!(again.header("cache-control"), Some(cache));
            assert_protected(&again);
        }
        // Another version's ETag: the file itself.
        let stale = get(path, &[("if-none-match", "\"0000000000000000\"")]).await;
        assert_eq!(stale.status, StatusCode::OK, "{path}");
        assert_eq!(stale.text, first.text);
    }
}

#[tokio::test]
async fn anything_else_under_the_console_is_404_in_the_error_envelope_and_never_cached() {
    // Paths of the documented shape, `/console/{version}/{file}`; the crate's own tests hold
    // the other paths under `/console/` to the same answer.
    let version = console::VERSION;
    for path in [
        format!("/console/{version}/missing.js"),
        format!("/console/{version}/index.html"),
        "/console/0000000000000000/app.js".to_owned(),
    ] {
        let reply = get(&path, &[]).await;
        let body = assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "not_found",
            "route_not_found",
        );
        assert!(body.get("param").is_none(), "{path}: {body}");
        assert_protected(&reply);
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert!(reply.header("etag").is_none(), "{path}");
    }
}
