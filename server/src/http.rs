//! The HTTP side: the publishers' API (section 6 of the protocol), the WebSocket endpoint
//! at `/ws`, `/health` and the hello page at `/`.

use crate::connection;
use crate::engine::{EngineError, HistoryFilter};
use crate::metrics::{published_by, METRICS};
use crate::node::Node;
use crate::session::{no_history, no_presence};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hubbub_core::api::{
    BroadcastPublished, BroadcastRequest, ChannelStats, Channels, DirectDelivered, DirectRequest,
    DisconnectRequest, Disconnected, Health, History, Info, Presence, PresenceStats,
    PublishRequest, Published, Request as _,
};
use hubbub_core::auth::check_api_key;
use hubbub_core::protocol::{close, ErrorBody};
use hubbub_core::{Error, Rejection, VERSION};
use std::net::SocketAddr;
use std::sync::Arc;

/// Every route of the server.
pub fn router(node: Arc<Node>) -> Router {
    let api = Router::new()
        .route("/publish", post(publish))
        .route("/broadcast", post(broadcast))
        .route("/direct", post(direct))
        .route("/disconnect", post(disconnect))
        .route("/channels", get(channels))
        .route("/info", get(info))
        .route("/history/{*channel}", get(history))
        .route("/presence/{*channel}", get(presence))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(node.clone(), authorize))
        .layer(DefaultBodyLimit::max(node.config.max_message_size))
        .layer(middleware::from_fn(observe));
    Router::new()
        .route("/", get(hello_page))
        .method_not_allowed_fallback(method_not_allowed)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/ws", get(websocket))
        .route("/sse/{*channel}", get(crate::sse::read_channel))
        .route("/connection/sse", get(crate::sse::open_session))
        .route("/connection/sse/{session}", post(crate::sse::post_commands))
        .merge(crate::admin::routes(&node))
        .nest("/api", api)
        .fallback(not_found)
        .with_state(node)
}

/// An HTTP API error: a status and the protocol's error body.
pub struct ApiError(StatusCode, ErrorBody);

impl ApiError {
    fn new(status: StatusCode, rejection: impl Into<Rejection>) -> ApiError {
        ApiError(status, rejection.into().into())
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, r)
    }
}

/// The engine failed: 503 `UNAVAILABLE`, nothing was done.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Rejection::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Checks the caller's address (`allowed_ips`, 403) and key (`api_keys`, 401), and that
/// a web page cannot call the API through its visitor's browser: a body must be JSON
/// (`Content-Type: application/json`, which a browser cannot send cross-site without a
/// CORS preflight that hubbub never grants), and where no key is needed, a request a
/// browser marks as cross-site is refused.
async fn authorize(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == axum::http::Method::POST && !is_json(request.headers()) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::InvalidPayload.because("send the body as Content-Type: application/json"),
        )
        .into_response();
    }
    if node.config.api_keys.is_empty() && is_cross_site(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Error::AccessDenied.because("cross-site requests may not call the API without a key"),
        )
        .into_response();
    }
    if !node.config.ip_allowed(peer.ip()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Error::AccessDenied.because(format!("{} may not call the API", peer.ip())),
        )
        .into_response();
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
    if let Err(rejection) = check_api_key(&node.config.api_keys, given) {
        return ApiError::new(StatusCode::UNAUTHORIZED, rejection).into_response();
    }
    next.run(request).await
}

/// Counts an API request and times it, by endpoint (the route, never the path a caller
/// wrote) and status.
async fn observe(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("other", |path| api_endpoint(path.as_str()));
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    METRICS
        .http_requests
        .get_or_create(&crate::metrics::Request { endpoint, status })
        .inc();
    METRICS
        .http_seconds
        .get_or_create(&crate::metrics::Endpoint { endpoint })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The API endpoint a matched route is, from a closed set.
fn api_endpoint(route: &str) -> &'static str {
    let name = route.trim_start_matches("/api/").split('/').next();
    match name.unwrap_or_default() {
        "publish" => "publish",
        "broadcast" => "broadcast",
        "direct" => "direct",
        "disconnect" => "disconnect",
        "channels" => "channels",
        "info" => "info",
        "history" => "history",
        "presence" => "presence",
        _ => "other",
    }
}

/// `GET /metrics`: Prometheus' text format, for the addresses `metrics_allowed_ips` lists.
async fn metrics(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !node.config.metrics {
        return not_found().await.into_response();
    }
    if !node.config.metrics_ip_allowed(peer.ip()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Error::AccessDenied.because(format!("{} may not read the metrics", peer.ip())),
        )
        .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        METRICS.render(&node),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a browser says the request comes from another site: `Sec-Fetch-Site`, or an
/// `Origin` whose host is not the one the request is addressed to.
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// The request body, or 413 when it is over `max_message_size` and 400 when it cannot be read.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Error::LimitExceeded.because("body larger than max_message_size"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Error::InvalidPayload.because(r.body_text()),
            )
        }
    })
}

async fn publish(
    State(node): State<Arc<Node>>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Published> {
    let r = PublishRequest::from_body(&body(raw)?)?;
    let position = node.publish(&r.channel, r.event, r.data, None).await?;
    published_by("api");
    let (offset, epoch) = match position {
        Some(p) => (Some(p.offset), Some(p.epoch)),
        None => (None, None),
    };
    Ok(Json(Published {
        published: r.channel,
        offset,
        epoch,
    }))
}

async fn broadcast(
    State(node): State<Arc<Node>>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<BroadcastPublished> {
    let mut r = BroadcastRequest::from_body(&body(raw)?)?;
    // A channel named twice is published to once.
    let mut seen = std::collections::HashSet::new();
    r.channels.retain(|c| seen.insert(c.clone()));
    for channel in &r.channels {
        node.publish(channel, r.event.clone(), r.data.clone(), None)
            .await?;
        published_by("api");
    }
    Ok(Json(BroadcastPublished {
        published: r.channels,
    }))
}

async fn direct(
    State(node): State<Arc<Node>>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<DirectDelivered> {
    let r = DirectRequest::from_body(&body(raw)?)?;
    let target = r.target()?;
    let delivered = node.direct(&target, r.event, r.data, None).await?;
    if delivered == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Error::InvalidClient.because(format!("nobody matched {:?}", target.name())),
        ));
    }
    Ok(Json(DirectDelivered {
        direct_sent: target.name().to_owned(),
        delivered,
    }))
}

async fn disconnect(
    State(node): State<Arc<Node>>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Disconnected> {
    let r = DisconnectRequest::from_body(&body(raw)?)?;
    let disconnected = node.kick(&r.target()?).await?;
    Ok(Json(Disconnected { disconnected }))
}

async fn channels(State(node): State<Arc<Node>>) -> ApiResult<Channels> {
    Ok(Json(Channels {
        channels: node
            .channels()
            .await?
            .into_iter()
            .map(|(name, subscribers)| (name, ChannelStats { subscribers }))
            .collect(),
    }))
}

async fn info(State(node): State<Arc<Node>>) -> ApiResult<Info> {
    let nodes = node.nodes().await?;
    // One node: its own figures, exact. Several: what each announced (a few seconds old).
    let channels = if nodes.len() > 1 {
        node.channels().await?.len()
    } else {
        node.channel_count()
    };
    Ok(Json(Info {
        version: VERSION.to_owned(),
        connections: nodes.iter().map(|n| n.connections).sum(),
        channels,
        uptime_s: node.uptime_s(),
        nodes,
    }))
}

/// The query of `GET /api/history/{channel}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    limit: Option<u32>,
    since: Option<u64>,
}

/// A channel named in a path, checked like any other channel name.
fn channel_in_path(channel: &str) -> Result<String, ApiError> {
    hubbub_core::channel::validate(channel)?;
    Ok(channel.to_owned())
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Error::InvalidPayload.because(r.body_text()),
        )
    })
}

async fn history(
    State(node): State<Arc<Node>>,
    Path(channel): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<History> {
    let channel = channel_in_path(&channel)?;
    let params = query(params)?;
    if !node.namespace(&channel).stream.keeps_history() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, no_history(&channel)));
    }
    let filter = HistoryFilter {
        since: params.since,
        limit: params.limit.map(|l| l as usize),
    };
    let history = node.history(&channel, filter).await?;
    Ok(Json(History {
        channel,
        epoch: history.position.epoch,
        offset: history.position.offset,
        messages: history.messages,
    }))
}

/// The query of `GET /api/presence/{channel}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceParams {
    #[serde(default)]
    stats: Option<String>,
}

async fn presence(
    State(node): State<Arc<Node>>,
    Path(channel): Path<String>,
    params: Result<Query<PresenceParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let channel = channel_in_path(&channel)?;
    let params = query(params)?;
    if !node.namespace(&channel).presence {
        return Err(ApiError::new(StatusCode::NOT_FOUND, no_presence(&channel)));
    }
    let stats = match params.stats.as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") | Some("") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Error::InvalidPayload
                    .because(format!("stats={other:?}: give stats=1 or leave it out")),
            ))
        }
    };
    if stats {
        let s = node.presence_stats(&channel).await?;
        return Ok(Json(PresenceStats {
            channel,
            clients: s.clients,
            users: s.users,
        })
        .into_response());
    }
    let clients = node.presence(&channel).await?;
    Ok(Json(Presence { channel, clients }).into_response())
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Error::UnknownCommand.because("this endpoint does not take that method"),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Error::UnknownCommand.because("no such endpoint"),
    )
}

/// The WebSocket read buffer of each connection, and the most one read takes. Every
/// connection keeps it for as long as it lives, so it is sized for commands (a subscribe
/// with a token is a few hundred bytes), not for the largest frame: a larger frame grows
/// the buffer to its length and is read in several reads.
const READ_BUFFER: usize = 512;

/// `GET /ws`: checks the Origin and hands the upgraded socket to a connection task.
async fn websocket(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<axum::Extension<Arc<crate::listener::Slot>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if node.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let limit = node.config.max_message_size;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !node.config.origin_allowed(origin) {
            tracing::debug!(origin, "origin refused");
            // A browser cannot see the status of a refused upgrade, only that the socket
            // failed; a close code it can read tells the page why, and that retrying will
            // not help. Nothing is read from such a connection.
            return upgrade.max_message_size(limit).on_upgrade(|socket| {
                connection::refuse_connection(socket, close::ACCESS_DENIED, "origin not allowed")
            });
        }
    }
    // What the connect hook is told of the upgrade request, taken now: the request is
    // gone once the socket is upgraded.
    let request = node.hooks.as_ref().map(|hooks| connection::Upgrade {
        ip: peer.ip().to_string(),
        headers: hooks
            .config
            .forward_headers
            .iter()
            .filter_map(|name| {
                let value = headers.get(name.as_str())?.to_str().ok()?;
                Some((name.clone(), value.to_owned()))
            })
            .collect(),
    });
    upgrade
        // The codec zero-fills its whole read buffer on the first read, so the 128 KiB
        // default would cost every idle connection 128 KiB of memory.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|e| tracing::warn!("WebSocket upgrade failed: {e}"))
        .on_upgrade(move |socket| {
            // The connection keeps its place under the caps for as long as it is open. A
            // combinator, not an async block: the block would hold the socket, and the
            // connection's future twice (before and while awaiting it).
            futures_util::FutureExt::map(connection::serve(node, socket, request), move |()| {
                drop(slot)
            })
        })
}

/// `GET /`: a page that shows what arrives on the channel `hello`.
async fn hello_page() -> Html<&'static str> {
    Html(include_str!("hello.html"))
}
