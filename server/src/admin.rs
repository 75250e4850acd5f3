//! The live admin dashboard at `/admin`, served only where `admin_password` is set.
//!
//! - `GET /admin`: the login form, or the dashboard for a logged-in browser (one page,
//!   its script and style inline, embedded in the binary: no CDN).
//! - `POST /admin/login` (form field `password`) sets the session cookie and goes back to
//!   `/admin`; a wrong password is 401. `POST /admin/logout` clears it.
//! - `GET /admin/api/stats`, `GET /admin/api/channel/{channel}`, `POST /admin/api/publish`
//!   and `POST /admin/api/disconnect`: what the page shows and does, with the same node
//!   calls as the HTTP API.
//!
//! The session cookie is `<expiry>.<HMAC-SHA256 of it under the password>`: HttpOnly,
//! `SameSite=Strict`, for `/admin` only, valid for 12 hours on every node that has the
//! same password (and on none once the password changes). Actions are POSTs that must
//! carry the header `X-Hubbub-Admin: 1`, which a page of another site cannot send without
//! a CORS preflight hubbub never grants, and are refused when the browser marks them as
//! cross-site; so are logins.

use crate::engine::HistoryFilter;
use crate::http::is_cross_site;
use crate::metrics::METRICS;
use crate::node::Node;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hubbub_core::api::Target;
use hubbub_core::protocol::RawJson;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const COOKIE: &str = "hubbub_admin";
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// The header every action carries (see the module's documentation).
const ACTION_HEADER: &str = "x-hubbub-admin";

const LOGIN_PAGE: &str = include_str!("admin/login.html");
const DASHBOARD: &str = include_str!("admin/dashboard.html");

/// The dashboard's routes; none where no `admin_password` is set (they are then 404 like
/// any unknown path).
pub fn routes(node: &Arc<Node>) -> Router<Arc<Node>> {
    if node.config.admin_password.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/admin", get(page))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/stats", get(stats))
        .route("/admin/api/channel/{*channel}", get(channel))
        .route("/admin/api/publish", post(publish))
        .route("/admin/api/disconnect", post(disconnect))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Compares without an early return, so the time taken does not tell how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn signature(password: &str, expiry: u64) -> String {
    hubbub_core::hooks::sign(password.as_bytes(), expiry, b"hubbub admin session")
}

/// Whether the request carries a session cookie signed with the password, not expired.
fn logged_in(node: &Node, headers: &HeaderMap) -> bool {
    let Some(password) = &node.config.admin_password else {
        return false;
    };
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'));
    cookies
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|value| {
            let Some((expiry, sig)) = value.split_once('.') else {
                return false;
            };
            let Ok(expiry) = expiry.parse::<u64>() else {
                return false;
            };
            expiry > now() && same(sig.as_bytes(), signature(password, expiry).as_bytes())
        })
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({"err": "ACCESS_DENIED", "reason": why}))).into_response()
}

/// An action's checks: a session, the action header, and no cross-site request; the
/// refusal where one fails.
fn refusal(node: &Node, headers: &HeaderMap) -> Option<Response> {
    if !logged_in(node, headers) {
        return Some(refused(StatusCode::UNAUTHORIZED, "log in at /admin"));
    }
    if headers.get(ACTION_HEADER).is_none() || is_cross_site(headers) {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "actions come from the dashboard's own page",
        ));
    }
    None
}

fn page_with(status: StatusCode, html: &'static str) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            // The page's own inline script and style, nothing from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

async fn page(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if logged_in(&node, &headers) {
        page_with(StatusCode::OK, DASHBOARD)
    } else {
        page_with(StatusCode::OK, LOGIN_PAGE)
    }
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

async fn login(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let password = node.config.admin_password.as_deref().unwrap_or_default();
    let given = form.map(|Form(f)| f.password).unwrap_or_default();
    if is_cross_site(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "log in from the dashboard's own page",
        );
    }
    if !same(given.as_bytes(), password.as_bytes()) {
        tracing::warn!("admin login refused: wrong password");
        // The login page again, saying so.
        let page = LOGIN_PAGE.replace("<p id=\"wrong\" hidden>", "<p id=\"wrong\">");
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let expiry = now() + SESSION.as_secs();
    let cookie = format!(
        "{COOKIE}={expiry}.{}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        signature(password, expiry),
        SESSION.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}

async fn logout(headers: HeaderMap) -> Response {
    if is_cross_site(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "log out from the dashboard's own page",
        );
    }
    let cookie = format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}

/// The figures the page polls: counters (the page turns them into rates), the top
/// channels by subscribers and by publications per second, and the nodes.
async fn stats(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if !logged_in(&node, &headers) {
        return refused(StatusCode::UNAUTHORIZED, "log in at /admin");
    }
    let mut channels = node.channels().await.unwrap_or_default();
    channels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    channels.truncate(10);
    let (rates, over) = node.publication_rates();
    let nodes = node.nodes().await.unwrap_or_default();
    let sum = |family: &str| {
        let m = &METRICS;
        match family {
            "in" => m.frames_in.get(),
            _ => m
                .frames_out
                .get_or_create(&crate::metrics::Kind { kind: "message" })
                .get(),
        }
    };
    Json(json!({
        "connections": node.connection_count(),
        "subscriptions": node.subscription_count(),
        "channels": node.channel_count(),
        "frames_in": sum("in"),
        "deliveries": sum("out"),
        "top_by_subscribers": channels,
        "top_by_rate": rates,
        "rate_seconds": over.as_secs_f64(),
        "nodes": nodes,
        "node": node.info().id,
    }))
    .into_response()
}

async fn channel(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Response {
    if !logged_in(&node, &headers) {
        return refused(StatusCode::UNAUTHORIZED, "log in at /admin");
    }
    let ns = node.namespace(&channel);
    let subscribers = node
        .channels()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|(c, _)| *c == channel))
        .map_or(0, |(_, n)| n);
    let presence = if ns.presence {
        node.presence(&channel).await.ok()
    } else {
        None
    };
    let history = if ns.stream.history_size > 0 {
        let filter = HistoryFilter {
            since: None,
            limit: Some(10),
        };
        node.history(&channel, filter).await.ok()
    } else {
        None
    };
    Json(json!({
        "channel": channel,
        "subscribers": subscribers,
        "presence": presence,
        "history": history.map(|h| json!({
            "epoch": h.position.epoch,
            "offset": h.position.offset,
            "messages": h.messages,
        })),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct PublishForm {
    channel: String,
    data: String,
}

async fn publish(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Json(form): Json<PublishForm>,
) -> Response {
    if let Some(refusal) = refusal(&node, &headers) {
        return refusal;
    }
    if let Err(r) = hubbub_core::channel::validate(&form.channel) {
        return (
            StatusCode::BAD_REQUEST,
            Json(hubbub_core::protocol::ErrorBody::from(r)),
        )
            .into_response();
    }
    // Text that is JSON goes as it is; anything else as a string.
    let data = RawJson::from_string(form.data.clone())
        .or_else(|_| RawJson::from_value(&form.data))
        .expect("a string is JSON");
    match node
        .publish(&form.channel, "message".into(), data, None)
        .await
    {
        Ok(_) => {
            crate::metrics::published_by("admin");
            Json(json!({"published": form.channel})).into_response()
        }
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct DisconnectForm {
    client: Option<String>,
    user: Option<String>,
}

async fn disconnect(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Json(form): Json<DisconnectForm>,
) -> Response {
    if let Some(refusal) = refusal(&node, &headers) {
        return refusal;
    }
    let target = match (form.client, form.user) {
        (Some(client), None) => Target::Client(client),
        (None, Some(user)) => Target::User(user),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"err": "INVALID_PAYLOAD", "reason": "give client or user"})),
            )
                .into_response()
        }
    };
    match node.kick(&target).await {
        Ok(n) => Json(json!({"disconnected": n})).into_response(),
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}
