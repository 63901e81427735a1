//! An admin API for a [`CacheLayer`]: an axum [`Router`] to nest anywhere, behind a bearer
//! token compared in constant time (feature `admin`).
//!
//! | endpoint | answers |
//! |---|---|
//! | `GET /health` | the tiers' [`Health`](crate::Health), JSON; `503` when a tier is down |
//! | `GET /ready` | `200` `ready`, or `503` when a tier is down: for an orchestrator's probe |
//! | `GET /stats` | the [`CacheStats`](crate::CacheStats) and, under `tiers`, the [hits per tier](crate::TierHits), JSON |
//! | `GET /hot` | the hottest keys of auto-refresh's sketch, JSON (`[]` without auto-refresh) |
//! | `GET /tags?limit=N` | the tags the stores index, most listed first, with how many entries each lists (default limit 100); `501` when no tier keeps a tag index |
//! | `GET /entry?url=…` | what is stored for a URL (each cached method, its key): status, age, ttl, tags, sizes, header names — never a body |
//! | `POST /invalidate` | one of `{"url": …}`, `{"tag": …}`, `{"pattern": …}`, `{"key": …}`, `{"clear": true}`; answers `{"entries": n}` (`null` when a tier cannot count) |
//!
//! Every request needs `Authorization: Bearer <token>`; without it, or with another token, the
//! answer is `401` with `WWW-Authenticate: Bearer`. Building the router without a token is an
//! error, unless you choose an unauthenticated admin that answers loopback clients only
//! ([`AdminBuilder::unauthenticated_loopback`]; the app must then be served with
//! `into_make_service_with_connect_info::<SocketAddr>()`, or every request is refused). Bad input
//! gets `400` and a JSON `{"error": …}` that says what was expected.
//!
//! ```no_run
//! use axum::Router;
//! use layercake::{CacheLayer, Moka, admin::Admin};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = CacheLayer::builder(Moka::default()).build()?;
//! let admin = Admin::builder(cache.clone())
//!     .token(std::env::var("ADMIN_TOKEN")?)
//!     .build()?;
//! let app: Router = Router::new()
//!     // … the application's routes, `.layer(cache)` …
//!     .nest("/admin", admin.router());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! # axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::{fmt, net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use layercake_backends::{Backend, Key, Selection, Timestamp};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    CacheLayer, Invalidated,
    engine::Purge,
    layer::{CachedResponse, KeyExtractor},
    predicate::{RequestPredicate, ResponsePredicate},
};

/// The admin API of one [`CacheLayer`]; made by [`Admin::builder`], served by
/// [`router`](Admin::router). See the [module docs](self).
///
/// ```
/// use layercake::{CacheLayer, Moka, admin::Admin};
/// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
/// let admin = Admin::builder(cache).token("0123456789abcdef").build().unwrap();
/// let routes: axum::Router = admin.router();
/// # drop(routes);
/// ```
pub struct Admin<B, K, Q, R> {
    layer: CacheLayer<B, K, Q, R>,
    auth: Auth,
}

impl<B, K, Q, R> Clone for Admin<B, K, Q, R> {
    fn clone(&self) -> Self {
        Admin {
            layer: self.layer.clone(),
            auth: self.auth.clone(),
        }
    }
}

impl<B, K, Q, R> fmt::Debug for Admin<B, K, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::Token(_) => "bearer token",
            Auth::Loopback => "loopback clients, unauthenticated",
        };
        f.debug_struct("Admin").field("auth", &auth).finish()
    }
}

/// Who may call the admin API.
#[derive(Clone)]
enum Auth {
    Token(Arc<[u8]>),
    Loopback,
}

/// Configures an [`Admin`]; see [`Admin::builder`].
///
/// ```
/// use layercake::{CacheLayer, Moka, admin::Admin};
/// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
/// let builder = Admin::builder(cache).token("0123456789abcdef");
/// assert!(builder.build().is_ok());
/// ```
#[must_use]
pub struct AdminBuilder<B, K, Q, R> {
    layer: CacheLayer<B, K, Q, R>,
    token: Option<String>,
    loopback: bool,
}

impl<B, K, Q, R> fmt::Debug for AdminBuilder<B, K, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminBuilder")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("loopback", &self.loopback)
            .finish()
    }
}

/// Why an admin API could not be built.
///
/// ```
/// use layercake::{CacheLayer, Moka, admin::{Admin, AdminError}};
/// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
/// let error = Admin::builder(cache).token("short").build().unwrap_err();
/// assert_eq!(error, AdminError::WeakToken);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// No token, and no explicit choice of an unauthenticated admin for loopback clients.
    NoToken,
    /// The token is shorter than 16 bytes: too easy to guess.
    WeakToken,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::NoToken => f.write_str(
                "the admin API needs a bearer token (`token`), or the explicit choice of \
                 `unauthenticated_loopback()`",
            ),
            AdminError::WeakToken => f.write_str("the admin token must be at least 16 bytes"),
        }
    }
}

impl std::error::Error for AdminError {}

impl<B, K, Q, R> Admin<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    /// An admin API for `layer` (a clone of the layer in front of the application: they
    /// share one engine).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, admin::Admin};
    ///
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let admin = Admin::builder(cache).token("a-long-random-admin-token").build().unwrap();
    /// # drop(admin);
    /// ```
    pub fn builder(layer: CacheLayer<B, K, Q, R>) -> AdminBuilder<B, K, Q, R> {
        AdminBuilder {
            layer,
            token: None,
            loopback: false,
        }
    }

    /// The routes, to nest where you like (`Router::new().nest("/admin", admin.router())`).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, admin::Admin};
    ///
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let admin = Admin::builder(cache).token("a-long-random-admin-token").build().unwrap();
    /// let app: axum::Router = axum::Router::new().nest("/admin", admin.router());
    /// # drop(app);
    /// ```
    pub fn router(&self) -> Router {
        let shared = Arc::new(self.clone());
        Router::new()
            .route("/health", get(health::<B, K, Q, R>))
            .route("/ready", get(ready::<B, K, Q, R>))
            .route("/stats", get(stats::<B, K, Q, R>))
            .route("/hot", get(hot::<B, K, Q, R>))
            .route("/tags", get(tags::<B, K, Q, R>))
            .route("/entry", get(entry::<B, K, Q, R>))
            .route("/invalidate", post(invalidate::<B, K, Q, R>))
            .layer(middleware::from_fn_with_state(self.auth.clone(), authorize))
            .with_state(shared)
    }
}

impl<B, K, Q, R> AdminBuilder<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    /// The bearer token every request must carry (at least 16 bytes; from a secret store or
    /// the environment, never from code).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka, admin::Admin};
    /// # let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let admin = Admin::builder(cache).token("0123456789abcdef").build();
    /// assert!(admin.is_ok());
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// No token: the API answers clients on a loopback address only (`127.0.0.1`, `::1`), for
    /// a sidecar or an operator on the same host. The app must be served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or every request is refused.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka, admin::Admin};
    /// # let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let admin = Admin::builder(cache).unauthenticated_loopback().build();
    /// assert!(admin.is_ok());
    /// ```
    pub fn unauthenticated_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }

    /// The admin API, or why it cannot be built.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka, admin::{Admin, AdminError}};
    /// # let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(Admin::builder(cache).build().unwrap_err(), AdminError::NoToken);
    /// ```
    pub fn build(self) -> Result<Admin<B, K, Q, R>, AdminError> {
        let auth = match (self.token, self.loopback) {
            (Some(token), _) if token.len() < 16 => return Err(AdminError::WeakToken),
            (Some(token), _) => Auth::Token(token.into_bytes().into()),
            (None, true) => Auth::Loopback,
            (None, false) => return Err(AdminError::NoToken),
        };
        Ok(Admin {
            layer: self.layer,
            auth,
        })
    }
}

/// Lets a request through when it carries the token (compared in constant time), or comes
/// from a loopback address to an unauthenticated admin.
async fn authorize(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let allowed = match &auth {
        Auth::Token(token) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .is_some_and(|given| bool::from(given.ct_eq(token))),
        Auth::Loopback => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback()),
    };
    if allowed {
        return next.run(request).await;
    }
    let mut response = failure(
        StatusCode::UNAUTHORIZED,
        "a valid admin bearer token is required",
    );
    if let Auth::Token(_) = auth {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// An error answer: `status` and `{"error": why}`.
fn failure(status: StatusCode, why: impl fmt::Display) -> Response {
    let body = serde_json::json!({ "error": why.to_string() });
    (status, Json(body)).into_response()
}

type Shared<B, K, Q, R> = State<Arc<Admin<B, K, Q, R>>>;

async fn health<B, K, Q, R>(State(admin): Shared<B, K, Q, R>) -> Response
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    let health = admin.layer.health().await;
    let status = if health.up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

async fn ready<B, K, Q, R>(State(admin): Shared<B, K, Q, R>) -> Response
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    if admin.layer.health().await.up {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "a storage tier is down").into_response()
    }
}

/// The counters, and the hits per tier.
#[derive(Serialize)]
struct StatsBody {
    #[serde(flatten)]
    stats: crate::CacheStats,
    tiers: Vec<crate::TierHits>,
}

async fn stats<B, K, Q, R>(State(admin): Shared<B, K, Q, R>) -> Json<StatsBody>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    Json(StatsBody {
        stats: admin.layer.stats(),
        tiers: admin.layer.tier_hits(),
    })
}

/// One of auto-refresh's hot keys.
#[derive(Serialize)]
struct HotKey {
    key: String,
    method: String,
    uri: String,
}

async fn hot<B, K, Q, R>(State(admin): Shared<B, K, Q, R>) -> Json<Vec<HotKey>>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    let keys = admin
        .layer
        .hot_keys()
        .into_iter()
        .map(|(key, method, uri)| HotKey {
            key: key.readable(),
            method: method.to_string(),
            uri: uri.to_string(),
        })
        .collect();
    Json(keys)
}

/// `?limit=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: Option<usize>,
}

/// One tag and how many entries it lists.
#[derive(Serialize)]
struct Tag {
    tag: String,
    entries: u64,
}

async fn tags<B, K, Q, R>(
    State(admin): Shared<B, K, Q, R>,
    limit: Result<Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Response
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    let Ok(Query(Limit { limit })) = limit else {
        return failure(StatusCode::BAD_REQUEST, "expected `?limit=N`, a number");
    };
    let backend = admin.layer.backend();
    match Backend::<CachedResponse>::tags(backend, limit.unwrap_or(100)).await {
        Ok(tags) => Json(
            tags.into_iter()
                .map(|(tag, entries)| Tag { tag, entries })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) if error.kind() == crate::BackendErrorKind::Unsupported => {
            failure(StatusCode::NOT_IMPLEMENTED, error)
        }
        Err(error) => failure(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

/// `?url=…`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Which {
    url: String,
}

/// What is stored under one key: never the body.
#[derive(Serialize)]
struct Stored {
    key: String,
    status: u16,
    age_secs: u64,
    ttl_secs: i64,
    stale_secs: u64,
    tags: Vec<String>,
    body_bytes: usize,
    headers: Vec<String>,
    varies: bool,
}

async fn entry<B, K, Q, R>(
    State(admin): Shared<B, K, Q, R>,
    which: Result<Query<Which>, axum::extract::rejection::QueryRejection>,
) -> Response
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    let Ok(Query(which)) = which else {
        return failure(StatusCode::BAD_REQUEST, "expected `?url=…` (a full URL)");
    };
    let keys = match admin.layer.keys_of_url(&which.url) {
        Ok(keys) => keys,
        Err(error) => return failure(StatusCode::BAD_REQUEST, error),
    };
    let now = Timestamp::now();
    let mut stored = Vec::new();
    for key in keys {
        let Some(entry) = admin.layer.lookup(&key).await else {
            continue;
        };
        let value = entry.value();
        stored.push(Stored {
            key: key.readable(),
            status: value.status().as_u16(),
            age_secs: entry.age(now).as_secs(),
            ttl_secs: crate::engine::ttl_seconds(&entry, now),
            stale_secs: entry
                .stale_until()
                .saturating_duration_since(entry.fresh_until())
                .as_secs(),
            tags: entry
                .tag_list()
                .map(|tags| tags.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default(),
            body_bytes: value.body().len(),
            headers: value.headers().keys().map(|n| n.to_string()).collect(),
            varies: value.vary().is_some(),
        });
    }
    if stored.is_empty() {
        return failure(StatusCode::NOT_FOUND, "nothing is stored there");
    }
    Json(stored).into_response()
}

/// What to invalidate: exactly one field.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    url: Option<String>,
    tag: Option<String>,
    pattern: Option<String>,
    key: Option<String>,
    #[serde(default)]
    clear: bool,
}

/// What an invalidation removed.
#[derive(Serialize)]
struct Removed {
    entries: Option<u64>,
}

async fn invalidate<B, K, Q, R>(State(admin): Shared<B, K, Q, R>, body: Bytes) -> Response
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    const EXPECTED: &str =
        r#"expected one of {"url": …}, {"tag": …}, {"pattern": …}, {"key": …}, {"clear": true}"#;
    let request: Invalidate = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return failure(StatusCode::BAD_REQUEST, format!("{error}; {EXPECTED}")),
    };
    let layer = &admin.layer;
    let done = match request {
        Invalidate {
            url: Some(url),
            tag: None,
            pattern: None,
            key: None,
            clear: false,
        } => layer.invalidate_url(&url).await.map_err(|e| {
            let status = match e {
                crate::InvalidateError::Url(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, e.to_string())
        }),
        Invalidate {
            tag: Some(tag),
            url: None,
            pattern: None,
            key: None,
            clear: false,
        } => unavailable(layer.invalidate_tag(&tag).await),
        Invalidate {
            pattern: Some(pattern),
            url: None,
            tag: None,
            key: None,
            clear: false,
        } => unavailable(layer.invalidate_pattern(&pattern).await),
        Invalidate {
            key: Some(key),
            url: None,
            tag: None,
            pattern: None,
            clear: false,
        } => unavailable(layer.invalidate_named(&key).await),
        Invalidate {
            clear: true,
            url: None,
            tag: None,
            pattern: None,
            key: None,
        } => unavailable(layer.clear().await),
        _ => return failure(StatusCode::BAD_REQUEST, EXPECTED),
    };
    match done {
        Ok(done) => Json(Removed {
            entries: done.entries,
        })
        .into_response(),
        Err((status, why)) => failure(status, why),
    }
}

/// A store that failed: `503` and why.
fn unavailable(
    done: Result<Invalidated, crate::BackendError>,
) -> Result<Invalidated, (StatusCode, String)> {
    done.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

impl<B, K, Q, R> CacheLayer<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    /// What is stored under `key`, fresh or stale.
    async fn lookup(&self, key: &Key) -> Option<Arc<layercake_backends::Entry<CachedResponse>>> {
        self.shared.engine.lookup(key).await.entry().cloned()
    }

    /// Removes the entry whose readable key is `readable` from every tier.
    async fn invalidate_named(&self, readable: &str) -> Result<Invalidated, crate::BackendError> {
        let glob = layercake_backends::key::glob_escape(readable);
        self.shared
            .engine
            .purge(Selection::Pattern(&glob), Purge::Remove)
            .await
    }

    /// Auto-refresh's hot keys with their requests' method and target.
    fn hot_keys(&self) -> Vec<(Key, http::Method, http::Uri)> {
        let Some(hot) = &self.shared.hot else {
            return Vec::new();
        };
        hot.hot_keys()
            .into_iter()
            .map(|(key, head)| {
                let (method, uri) = head.target();
                (key, method.clone(), uri.clone())
            })
            .collect()
    }
}
