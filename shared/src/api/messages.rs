//! `GET /v1/whatsapp/sandbox/messages`: the caller's sandbox conversation, newest first.
//!
//! One `Query` of the caller's own conversation partition (so a cursor can never reach another
//! user's) and one read of the session for the customer-service window. Messages are kept 7
//! days, also after the session is revoked.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{json_response, serve, ApiError};
use crate::message::window_expires_at;
use crate::session::{rfc3339, SessionStatus};
use crate::store::is_message_sort_key;

/// The route label in logs.
pub const ROUTE: &str = "GET /v1/whatsapp/sandbox/messages";
/// `limit` of a conversation page when the caller names none.
pub const DEFAULT_PAGE: i32 = 50;
/// The largest page.
pub const MAX_PAGE: i32 = 100;

/// Lists a page of the caller's conversation.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| list(app, req)).await
}

async fn list(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let params = req.query_string_parameters();
    let limit = page_limit(params.first("limit"))?;
    let after = match params.first("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::InvalidField {
            param: "cursor",
            message: "cursor is not one this API returned as nextCursor".into(),
            details: None,
        })?),
    };
    let (messages, next) = app.store.conversation(&user, limit, after).await?;
    let session = app.store.live_session(&user, now).await?;
    let window = session
        .filter(|s| s.status == SessionStatus::Active)
        .and_then(|s| {
            window_expires_at(
                s.last_inbound_at,
                app.config.customer_service_window_seconds,
            )
        });
    let views: Vec<_> = messages.iter().map(|m| m.view()).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "messages": views,
            "nextCursor": next.as_deref().map(encode_cursor),
            "windowExpiresAt": window.map(rfc3339),
        }),
    ))
}

/// `limit` from the query string: 1-100, default 50.
pub fn page_limit(raw: Option<&str>) -> Result<i32, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(s) => match s.trim().parse::<i32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidField {
                param: "limit",
                message: "limit must be a whole number from 1 to 100".into(),
                details: None,
            }),
        },
    }
}

/// An opaque page cursor: the `sk` the next page starts after, base64url-encoded. The
/// partition is always the caller's, so a cursor can never reach another conversation.
pub fn encode_cursor(sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(sort_key.as_bytes())
}

/// The `sk` a cursor names, if it is one this service issued the shape of.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || cursor.len() > 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    let sk = String::from_utf8(bytes).ok()?;
    is_message_sort_key(&sk).then_some(sk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message_sort_key;

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let sk = message_sort_key(1_795_529_722, "oAbC");
        assert_eq!(sk, "MSG#1795529722#oAbC");
        assert_eq!(decode_cursor(&encode_cursor(&sk)), Some(sk));
        for bad in [
            "",
            "!!",
            &encode_cursor("SESSION"),
            &encode_cursor("MSG#12#x"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn pages_hold_1_to_100_messages_50_by_default() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert!(page_limit(Some("0")).is_err() && page_limit(Some("101")).is_err());
    }
}
