//! The console function: serves the browser console (`console/src`, embedded at build time by
//! `build.rs`) at `GET /console` (the page) and `GET /console/{proxy+}` (its assets, at
//! `/console/<version>/<name>`). The console is a client of the public API and nothing more:
//! this function reads no configuration and touches no table.
//!
//! Every answer carries the Content-Security-Policy ([`POLICY`]), `X-Content-Type-Options:
//! nosniff` and `Referrer-Policy: no-referrer`. The page is `no-cache` (a deploy is seen at
//! once), the assets `immutable` for a year (their URL changes with their content); both have
//! an `ETag`, and an `If-None-Match` naming it is answered 304. Anything else under `/console/`
//! is 404 in the error envelope. One log line per request, as every function writes
//! (`sandbox::edge::serve`).

mod files;

use lambda_http::http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use sandbox::edge::{serve, ApiError};

pub use files::{asset, File, ASSETS, PAGE, VERSION};

/// The page's Content-Security-Policy: everything from this origin only (the API included), no
/// inline script or style, no `<base>`, never framed.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The page's `Cache-Control`: kept, but revalidated every time (its `ETag` makes that a 304).
pub const PAGE_CACHE: &str = "no-cache";
/// An asset's `Cache-Control`: its URL names its content, so it never changes.
pub const ASSET_CACHE: &str = "public, max-age=31536000, immutable";
/// The route labels in logs, as template.yaml names the routes.
pub const PAGE_ROUTE: &str = "GET /console";
/// See [`PAGE_ROUTE`].
pub const ASSET_ROUTE: &str = "GET /console/{proxy+}";

/// What a path asks for.
enum Target {
    /// `/console` (under any stage prefix).
    Page,
    /// `/console/<rest>`: an asset if `<rest>` names one.
    Asset(String),
}

impl Target {
    /// The target of a request path. The last `/console` counts, so a stage that happens to be
    /// called `console` changes nothing.
    fn of(path: &str) -> Self {
        if path.ends_with("/console") {
            return Self::Page;
        }
        let rest = path
            .rfind("/console/")
            .map_or("", |at| &path[at + "/console/".len()..]);
        Self::Asset(rest.to_owned())
    }
}

/// Serves one request.
pub async fn handle(req: Request) -> Response<Body> {
    let target = Target::of(req.uri().path());
    let route = match target {
        Target::Page => PAGE_ROUTE,
        Target::Asset(_) => ASSET_ROUTE,
    };
    let mut response = serve(req, route, |req| async move {
        match &target {
            Target::Page => Ok(send(&PAGE, PAGE_CACHE, &req)),
            Target::Asset(path) => asset(path)
                .map(|file| send(file, ASSET_CACHE, &req))
                .ok_or(ApiError::RouteNotFound),
        }
    })
    .await;
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // A 404 is not cached: the asset may be one a newer deploy is about to serve.
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(PAGE_CACHE));
    response
}

/// `file` with its headers, or 304 when the request's `If-None-Match` names its `ETag`.
fn send(file: &'static File, cache: &'static str, req: &Request) -> Response<Body> {
    let unchanged = not_modified(req, file.etag);
    let mut response = if unchanged {
        Response::new(Body::Empty)
    } else {
        Response::new(Body::Text(file.body.to_owned()))
    };
    if unchanged {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    let static_headers: [(HeaderName, &'static str); 2] =
        [(ETAG, file.etag), (CACHE_CONTROL, cache)];
    for (name, value) in static_headers {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !unchanged {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    }
    response
}

/// Whether any `If-None-Match` of the request names `etag` (or is `*`), by the weak comparison
/// RFC 9110 asks for: `W/"x"` matches `"x"`.
pub fn not_modified(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_if_none_match(values: &[&str]) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("/console");
        for v in values {
            builder = builder.header(IF_NONE_MATCH, *v);
        }
        builder.body(Body::Empty).expect("a request")
    }

    #[test]
    fn if_none_match_names_the_etag_in_any_list_weakly_or_with_a_star() {
        let etag = "\"0123456789abcdef\"";
        for matching in [
            &[etag][..],
            &["W/\"0123456789abcdef\""],
            &["\"other\", \"0123456789abcdef\""],
            &["\"other\"", etag],
            &["*"],
        ] {
            assert!(
                not_modified(&with_if_none_match(matching), etag),
                "{matching:?}"
            );
        }
        for other in [
            &[][..],
            &["\"0123456789abcdee\""],
            &["0123456789abcdef"],
            &["\"0123456789abcdef"],
        ] {
            assert!(!not_modified(&with_if_none_match(other), etag), "{other:?}");
        }
    }

    #[test]
    fn a_path_names_the_page_or_an_asset_under_any_stage() {
        assert!(matches!(Target::of("/console"), Target::Page));
        assert!(matches!(Target::of("/prod/console"), Target::Page));
        assert!(matches!(Target::of("/console/console"), Target::Page));
        for (path, rest) in [
            ("/console/abc/app.js", "abc/app.js"),
            ("/prod/console/abc/app.js", "abc/app.js"),
            ("/console/console/abc/app.js", "abc/app.js"),
            ("/console/", ""),
        ] {
            match Target::of(path) {
                Target::Asset(found) => assert_eq!(found, rest, "{path}"),
                Target::Page => panic!("{path} is no page"),
            }
        }
    }

    #[tokio::test]
    async fn any_other_path_under_the_console_is_the_envelopes_404_under_the_policy() {
        for path in [
            "/console/".to_owned(),
            "/console/app.js".to_owned(),
            format!("/console/{VERSION}/"),
            format!("/console/{VERSION}/app.js/x"),
            format!("/console/{VERSION}/../index.html"),
        ] {
            let req = lambda_http::http::Request::builder()
                .uri(format!("https://api.test{path}"))
                .body(Body::Empty)
                .expect("a request");
            let response = handle(req).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            let headers = response.headers();
            assert_eq!(headers[CONTENT_SECURITY_POLICY], POLICY, "{path}");
            assert_eq!(headers[CACHE_CONTROL], PAGE_CACHE, "{path}");
            assert_eq!(headers[CONTENT_TYPE], "application/json", "{path}");
            let Body::Text(body) = response.body() else {
                panic!("{path}: a JSON body");
            };
            assert_eq!(
                body,
                r#"{"error":"no such endpoint","type":"not_found","code":"route_not_found"}"#
            );
        }
    }

    #[test]
    fn every_asset_is_served_under_this_builds_version_only() {
        assert!(!ASSETS.is_empty());
        for file in ASSETS {
            let path = format!("{VERSION}/{}", file.name);
            assert!(asset(&path).is_some_and(|f| f.name == file.name), "{path}");
            assert!(asset(&format!("0000000000000000/{}", file.name)).is_none());
            assert!(asset(file.name).is_none());
        }
        assert!(asset(&format!("{VERSION}/missing.js")).is_none());
        assert!(asset(&format!("{VERSION}/index.html")).is_none());
    }
}
