//! The admin API through a real axum server: authentication, every endpoint, bad input.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use layercake::{
    Backend, CacheLayer, Moka, Redis,
    admin::{Admin, AdminError},
    compose::Compose,
    layer::CachedResponse,
};

const TOKEN: &str = "test-admin-token-0123456789";

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Server {
    base: String,
    client: HttpClient,
}

impl Server {
    async fn start<B: Backend<CachedResponse>>(cache: CacheLayer<B>, admin: Router) -> Self {
        let app = Router::new()
            .route(
                "/items/{id}",
                get(|| async { ([("surrogate-key", "items")], "an item") }),
            )
            .layer(cache)
            .nest("/admin", admin);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).await.unwrap()
        });
        Server {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        let (parts, body) = self.client.request(request).await.unwrap().into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    async fn admin(&self, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let (status, _, body) = self
            .call(method, &format!("/admin{path}"), Some(TOKEN), body)
            .await;
        (status, body)
    }
}

async fn with_moka() -> (Server, CacheLayer<Moka>) {
    let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    let admin = Admin::builder(cache.clone()).token(TOKEN).build().unwrap();
    (Server::start(cache.clone(), admin.router()).await, cache)
}

#[test]
fn an_admin_without_a_token_or_with_a_weak_one_is_not_built() {
    let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    let no_token = Admin::builder(cache.clone()).build().unwrap_err();
    assert_eq!(no_token, AdminError::NoToken);
    assert!(no_token.to_string().contains("unauthenticated_loopback"));
    let weak = Admin::builder(cache).token("short").build().unwrap_err();
    assert_eq!(weak, AdminError::WeakToken);
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let (server, _) = with_moka().await;
    for token in [None, Some("test-admin-token-0123456780"), Some("x")] {
        let (status, headers, body) = server.call("GET", "/admin/stats", token, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert!(body.contains("token"), "{body}");
    }
    let (status, _) = server.admin("GET", "/stats", "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn stats_health_and_readiness() {
    let (server, _) = with_moka().await;
    server.call("GET", "/items/1", None, "").await;
    server.call("GET", "/items/1", None, "").await;
    let (status, body) = server.admin("GET", "/stats", "").await;
    assert_eq!(status, StatusCode::OK);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (stats["hits"].as_u64(), stats["stores"].as_u64()),
        (Some(1), Some(1))
    );

    let (status, body) = server.admin("GET", "/health", "").await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["up"], true);
    assert_eq!(health["tiers"][0]["name"], "moka");
    assert_eq!(
        server.admin("GET", "/ready", "").await,
        (StatusCode::OK, "ready".into())
    );
}

#[tokio::test]
async fn a_tier_that_is_down_makes_health_and_readiness_fail() {
    // Nothing listens on port 1: the Redis tier is down.
    let redis = Redis::builder()
        .url("redis://127.0.0.1:1")
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let cache = CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), redis))
        .build()
        .unwrap();
    let admin = Admin::builder(cache.clone()).token(TOKEN).build().unwrap();
    let server = Server::start(cache, admin.router()).await;
    let (status, body) = server.admin("GET", "/health", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["up"], false);
    assert_eq!(health["tiers"][1]["up"], false);
    let (status, _) = server.admin("GET", "/ready", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_entry_is_described_without_its_body() {
    let (server, _) = with_moka().await;
    let url = format!("{}/items/7", server.base);
    let (status, _) = server.admin("GET", &format!("/entry?url={url}"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.call("GET", "/items/7", None, "").await;
    let (status, body) = server.admin("GET", &format!("/entry?url={url}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stored[0]["status"], 200);
    assert_eq!(stored[0]["body_bytes"], 7);
    assert_eq!(stored[0]["tags"][0], "items");
    assert!(!body.contains("an item"), "never the body: {body}");
    let (status, body) = server.admin("GET", "/entry?url=/items/7", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("full URL"), "{body}");
    let (status, _) = server.admin("GET", "/entry", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invalidation_by_url_tag_pattern_key_and_clear() {
    let (server, cache) = with_moka().await;
    let fill = || async {
        for id in 1..=3 {
            server.call("GET", &format!("/items/{id}"), None, "").await;
        }
    };
    fill().await;
    let url = format!(r#"{{"url": "{}/items/1"}}"#, server.base);
    assert_eq!(
        server.admin("POST", "/invalidate", &url).await,
        (StatusCode::OK, r#"{"entries":1}"#.into())
    );
    assert_eq!(
        server
            .admin("POST", "/invalidate", r#"{"pattern": "/items/2"}"#)
            .await,
        (StatusCode::OK, r#"{"entries":1}"#.into())
    );
    assert_eq!(
        server
            .admin("POST", "/invalidate", r#"{"tag": "items"}"#)
            .await,
        (StatusCode::OK, r#"{"entries":1}"#.into())
    );
    fill().await;
    let key = format!(
        "layercake:http/3:GET:{}:/items/3",
        server.base.trim_start_matches("http://")
    );
    let body = serde_json::json!({ "key": key }).to_string();
    assert_eq!(
        server.admin("POST", "/invalidate", &body).await,
        (StatusCode::OK, r#"{"entries":1}"#.into())
    );
    assert_eq!(
        server
            .admin("POST", "/invalidate", r#"{"clear": true}"#)
            .await,
        (StatusCode::OK, r#"{"entries":2}"#.into())
    );
    assert!(cache.stats().invalidations >= 6);
}

#[tokio::test]
async fn tags_are_listed_with_their_entries() {
    let (server, _) = with_moka().await;
    assert_eq!(
        server.admin("GET", "/tags", "").await,
        (StatusCode::OK, "[]".into())
    );
    for id in 1..=3 {
        server.call("GET", &format!("/items/{id}"), None, "").await;
    }
    let (status, body) = server.admin("GET", "/tags?limit=5", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"[{"tag":"items","entries":3}]"#)
    );
    let (status, _) = server.admin("GET", "/tags?limit=many", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_invalidation_requests_say_what_was_expected() {
    let (server, _) = with_moka().await;
    for body in [
        "",
        "not json",
        r#"{"url": "/a", "tag": "b"}"#,
        r#"{"colour": "red"}"#,
        r#"{}"#,
        r#"{"url": "/items/1"}"#,
    ] {
        let (status, answer) = server.admin("POST", "/invalidate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(answer["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn an_unauthenticated_admin_answers_loopback_clients_only() {
    let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    let admin = Admin::builder(cache.clone())
        .unauthenticated_loopback()
        .build()
        .unwrap();
    let server = Server::start(cache.clone(), admin.router()).await;
    let (status, _, _) = server.call("GET", "/admin/stats", None, "").await;
    assert_eq!(status, StatusCode::OK, "127.0.0.1 is loopback");

    // Served without the peer's address, it cannot tell: it refuses.
    let app = Router::new().nest("/admin", admin.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let blind = Server {
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let (status, _, _) = blind.call("GET", "/admin/stats", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
