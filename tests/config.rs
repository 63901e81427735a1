//! A whole cache from a configuration file: every field read, written back and read again the
//! same; every kind of mistake said with its field, line and column; the configured layer
//! serving as configured; reloads under load that lose nothing and mix nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use http::StatusCode;
use layercake::config::{
    BackendConfig, Config, ConfigError, ConfiguredLayer, ConfiguredService, KeyPart,
};
use layercake_tests::{Origin, cache_status, fetch, get, redis_server::RedisServer, text};
use tower::Layer;

/// Every field of the schema, set to something other than its default.
const EVERY_FIELD: &str = r#"
name: edge
namespace: shop
mode: private
cache_control: origin_only
client_directives: ignore
backend:
  compose:
    read: race
    write: sequential
    refill: never
    l1:
      moka: { name: front, max_bytes: 32 MiB, max_entries: 1000, max_ttl: 1h }
    l2:
      redis:
        name: shared
        url: redis://127.0.0.1:6379/2
        prefix: "shop:"
        format: json
        compression: { algorithm: zstd, level: 9, min_size: 1 KiB }
        max_payload_size: 8 MiB
        timeout: 150ms
        circuit_breaker: { failures: 3, cool_down: 2s }
policy:
  preset: short
  ttl: 90
  stale: 5m 30s
  stale_policy: offload_revalidate
  negative_ttl: 7s
  refresh_before: 10s
  concurrency: 2
  lock_timeout: 3s
  stale_if_error: 10m
  upstream_timeout: 20s
limits: { max_body_size: 1 MiB, min_body_size: 16, max_request_body_size: 32 KiB }
methods: [GET, HEAD, POST]
statuses: [200, 301, 404]
stale_if_error_statuses: [500, 502, 503]
headers:
  allowlist: [content-type, etag]
  allow_authorization: true
  allow_cookies: true
  ignore_cookies: [_ga]
  allow_set_cookie: true
  targeted_cache_control: [cdn-cache-control]
  last_targeted_hop: true
authority_in_key: false
key:
  - path
  - path_and_query
  - { query: { only: [page, sort] } }
  - { query: { except: [utm_source] } }
  - { headers: [accept-language] }
  - { path_params: "/users/{id}" }
  - { header_prefix: x-tenant- }
  - { lowercase: path }
request:
  all:
    - { method: [GET] }
    - { path: ["/users/{id}", "/assets/{*rest}"] }
    - { path_prefix: /api }
    - any:
        - { header: { name: accept, contains: json } }
        - { query: { name: format, one_of: [json, csv] } }
        - { header: { name: x-version, matches: "^v[0-9]+$" } }
    - not: { header: { name: x-no-cache } }
    - { query: { name: debug, equals: "0" } }
response:
  all:
    - default
    - { status: [200, 404] }
    - { status_class: success }
    - { header: { name: x-cacheable } }
    - { content_type: [text/html, application/json] }
    - { body_size: { min: 1, max: 1 MiB } }
    - not: { any: [] }
tags:
  static: [shop, catalogue]
  headers: [surrogate-key]
  keep_headers: true
"#;

#[test]
fn every_field_is_read() {
    let config = Config::from_yaml(EVERY_FIELD).unwrap();
    assert_eq!(config.name.as_deref(), Some("edge"));
    assert_eq!(config.policy.ttl.unwrap().get(), Duration::from_secs(90));
    assert_eq!(config.policy.stale.unwrap().get(), Duration::from_secs(330));
    assert_eq!(config.policy.concurrency.unwrap().get(), 2);
    assert_eq!(
        config.limits.max_request_body_size.unwrap().get(),
        32 * 1024
    );
    assert_eq!(
        config.methods.as_ref().unwrap()[2].get(),
        http::Method::POST
    );
    assert_eq!(config.key.as_ref().unwrap().len(), 8);
    assert_eq!(
        config.key.as_ref().unwrap()[7],
        KeyPart::Lowercase(Box::new(KeyPart::Path))
    );
    let Some(BackendConfig::Compose(tiers)) = &config.backend else {
        panic!("a composed backend: {:?}", config.backend);
    };
    let BackendConfig::Redis(redis) = &tiers.l2 else {
        panic!("Redis as l2: {:?}", tiers.l2);
    };
    assert_eq!(redis.timeout.unwrap().get(), Duration::from_millis(150));
    assert_eq!(redis.compression.unwrap().min_size.unwrap().get(), 1024);
    assert_eq!(config.tags.static_tags.as_ref().unwrap().len(), 2);
}

#[test]
fn every_field_round_trips_through_yaml_and_toml() {
    let config = Config::from_yaml(EVERY_FIELD).unwrap();
    let yaml = config.to_yaml().unwrap();
    assert_eq!(Config::from_yaml(&yaml).unwrap(), config, "YAML:\n{yaml}");
    let toml = config.to_toml().unwrap();
    assert_eq!(Config::from_toml(&toml).unwrap(), config, "TOML:\n{toml}");
    // Nothing is dropped on the way: the written forms carry every section.
    for section in [
        "backend", "policy", "limits", "headers", "key", "request", "response", "tags",
    ] {
        assert!(yaml.contains(section), "{section} missing from\n{yaml}");
        assert!(toml.contains(section), "{section} missing from\n{toml}");
    }
}

#[tokio::test]
async fn the_shipped_example_files_build() {
    for file in ["proxy.yaml", "tiers.yaml"] {
        let path = format!("{}/../examples/config/{file}", env!("CARGO_MANIFEST_DIR"));
        let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let yaml = config.to_yaml().unwrap();
        assert_eq!(Config::from_yaml(&yaml).unwrap(), config, "{file}");
        // Redis connects lazily: the stack builds with or without a server.
        let cache = ConfiguredLayer::from_file(&path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.config().name.as_deref(), Some("proxy"));
    }
}

/// `error`'s message says `expected` (in any case).
fn assert_says(error: &ConfigError, expected: &str, input: &str) {
    let message = error.message().to_lowercase();
    assert!(
        message.contains(&expected.to_lowercase()),
        "{input}: {expected:?} not in {error}"
    );
}

fn yaml_error(text: &str) -> ConfigError {
    Config::from_yaml(text).expect_err("an invalid configuration")
}

#[test]
fn syntax_errors_give_the_line_and_column() {
    let error = yaml_error("name: edge\npolicy: { ttl: 30s\n");
    assert!(error.line().is_some(), "{error}");
    let error = Config::from_toml("name = \"edge\"\n[policy\n").unwrap_err();
    assert_eq!(error.line(), Some(2), "{error}");
}

#[test]
fn unknown_fields_are_named_with_their_path_and_line() {
    let error = yaml_error("policy:\n  ttl: 30s\n  stale_whlie_revalidate: 5m\n");
    assert_eq!(error.path(), "policy.stale_whlie_revalidate");
    assert_eq!(
        (error.line(), error.column()),
        (Some(3), Some(3)),
        "{error}"
    );
    assert!(error.message().contains("unknown field"), "{error}");
    assert!(
        error.message().contains("stale_policy"),
        "the expected fields: {error}"
    );

    let error = Config::from_toml("[limits]\nmax_bodysize = 5\n").unwrap_err();
    assert_eq!(error.path(), "limits.max_bodysize");
    assert_eq!(error.line(), Some(2), "{error}");
}

#[test]
fn values_of_the_wrong_kind_say_what_was_expected() {
    let cases = [
        ("policy: { ttl: soon }", "policy.ttl", "duration"),
        (
            "limits: { max_body_size: lots }",
            "limits.max_body_size",
            "size",
        ),
        (
            "policy: { concurrency: 0 }",
            "policy.concurrency",
            "nonzero",
        ),
        ("statuses: [42]", "statuses[0]", "status code"),
        ("methods: [\"GE T\"]", "methods[0]", "HTTP method"),
        (
            "headers: { allowlist: [\"bad header\"] }",
            "headers.allowlist[0]",
            "header name",
        ),
        ("mode: public", "mode", "shared"),
        (
            "backend: { redis: { format: yaml } }",
            "backend.redis.format",
            "ron",
        ),
        (
            "policy: { stale_policy: sometimes }",
            "policy.stale_policy",
            "offload_revalidate",
        ),
        (
            "backend: { compose: { l1: { moka: {} }, l2: { cassandra: {} } } }",
            "backend.compose.l2",
            "redis",
        ),
        (
            "key: [path, { query: { first: [a] } }]",
            "key[1].query.first",
            "only",
        ),
        (
            "response: { status_class: great }",
            "response.status_class",
            "success",
        ),
    ];
    for (text, path, expected) in cases {
        let error = yaml_error(text);
        assert!(
            error.path().starts_with(path),
            "{text}: path {:?} in {error}",
            error.path()
        );
        assert_says(&error, expected, text);
        assert_eq!(error.line(), Some(1), "{text}: {error}");
    }
}

/// A valid file that is not a valid cache: the error names the field, and from a file its line.
async fn build_error(file: &str, text: &str) -> ConfigError {
    let dir = std::env::temp_dir().join(format!("layercake-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    let error = ConfiguredLayer::from_file(&path)
        .await
        .expect_err("a configuration that does not build");
    assert!(
        error.to_string().starts_with(&path.display().to_string()),
        "{error}"
    );
    error
}

#[tokio::test]
async fn invalid_caches_are_named_by_field_and_line() {
    // (file, text, field, line and column, what the message says)
    let from_files = [
        (
            "refresh.yaml",
            "name: edge\npolicy:\n  ttl: 30s\n  refresh_before: 1m\n",
            "policy.refresh_before",
            (4, 3),
            "ttl",
        ),
        (
            "url.yaml",
            "backend:\n  compose:\n    l1: { moka: {} }\n    l2:\n      redis:\n        url: \"http//nowhere\"\n",
            "backend.compose.l2.redis.url",
            (6, 9),
            "redis URL",
        ),
        (
            "level.toml",
            "[backend.redis]\nurl = \"redis://127.0.0.1:1\"\n\n[backend.redis.compression]\nalgorithm = \"zstd\"\nlevel = 40\n",
            "backend.redis.compression.level",
            (6, 1),
            "1 to 22",
        ),
    ];
    for (file, text, path, (line, column), expected) in from_files {
        let error = build_error(file, text).await;
        assert_eq!(error.path(), path, "{error}");
        assert_eq!(
            (error.line(), error.column()),
            (Some(line), Some(column)),
            "{error}"
        );
        assert!(error.message().contains(expected), "{error}");
    }

    let cases = [
        ("name: \"not a token\"", "name", "Cache-Status token"),
        ("namespace: \"\"", "namespace", "namespace"),
        ("methods: []", "methods", "method"),
        ("policy: { ttl: 0 }", "policy.ttl", "ttl"),
        (
            "policy: { lock_timeout: 0 }",
            "policy.lock_timeout",
            "lock timeout",
        ),
        (
            "limits: { min_body_size: 10, max_body_size: 5 }",
            "limits.min_body_size",
            "larger",
        ),
        (
            "key: [{ query: { only: [a], except: [b] } }]",
            "key[0].query",
            "not both",
        ),
        (
            "key: [{ path_params: \"/users/{id\" }]",
            "key[0].path_params",
            "/users/{id",
        ),
        ("request: { path: [\"/a/{x\"] }", "request.path", "/a/{x"),
        (
            "request: { header: { name: x, equals: a, contains: b } }",
            "request.header",
            "at most one",
        ),
        (
            "request: { header: { name: \"a b\" } }",
            "request.header.name",
            "header name",
        ),
        (
            "request: { query: { name: q, matches: \"(\" } }",
            "request.query.matches",
            "regex",
        ),
        (
            "response: { body_size: { min: 10, max: 1 } }",
            "response.body_size.min",
            "larger",
        ),
        (
            "backend: { disk: { timeout: 0 } }",
            "backend.disk.timeout",
            "greater than zero",
        ),
        (
            "backend: { memcached: { timeout: 0 } }",
            "backend.memcached.timeout",
            "greater than zero",
        ),
        (
            "backend: { memcached: { prefix: \"has space\" } }",
            "backend.memcached.prefix",
            "no spaces",
        ),
        (
            "backend: { redis: { timeout: 0 } }",
            "backend.redis.timeout",
            "greater than zero",
        ),
    ];
    for (text, path, expected) in cases {
        let error = Config::from_yaml(text)
            .unwrap()
            .build()
            .await
            .expect_err(text);
        assert_eq!(error.path(), path, "{text}: {error}");
        assert_says(&error, expected, text);
    }
}

#[tokio::test]
async fn files_are_yaml_or_toml_and_must_exist() {
    let error = Config::from_file("cache.json").unwrap_err();
    assert!(error.to_string().contains("YAML"), "{error}");
    let error = Config::from_file("/nonexistent/cache.yaml").unwrap_err();
    assert!(
        error.to_string().starts_with("/nonexistent/cache.yaml:"),
        "{error}"
    );
}

/// An origin whose body is its call count, fresh for a minute.
#[tokio::test]
async fn a_configured_layer_serves_as_configured() {
    let config = Config::from_yaml(
        r#"
name: edge
key: [path, { query: { only: [page] } }]
request: { not: { path_prefix: /private } }
response: { not: { status: [404] } }
"#,
    )
    .unwrap();
    let cache = ConfiguredLayer::new(config).await.unwrap();
    let origin = Origin::counting();
    let service = cache.layer(origin.clone());

    let (parts, body) = fetch(&service, get("/items?page=1&utm=a")).await;
    assert_eq!(body, "call 1");
    assert!(
        cache_status(&parts).starts_with("edge; fwd=uri-miss"),
        "{parts:?}"
    );
    // The key keeps `page` only: another `utm` is the same entry.
    let (parts, body) = fetch(&service, get("/items?utm=b&page=1")).await;
    assert_eq!(body, "call 1");
    assert!(cache_status(&parts).starts_with("edge; hit"), "{parts:?}");
    assert_eq!(origin.calls(), 1);
    // The request rule: a path under /private passes by.
    let (parts, _) = fetch(&service, get("/private/x")).await;
    let (_, body) = fetch(&service, get("/private/x")).await;
    assert_eq!(body, "call 3");
    assert!(cache_status(&parts).contains("fwd=bypass"), "{parts:?}");
}

/// A configured layer from `yaml` in front of an [`Origin::counting`], which has served `/a` once.
async fn serving(yaml: &str) -> (ConfiguredLayer, ConfiguredService<Origin>) {
    let cache = ConfiguredLayer::new(Config::from_yaml(yaml).unwrap())
        .await
        .unwrap();
    let service = cache.layer(Origin::counting());
    fetch(&service, get("/a")).await;
    (cache, service)
}

/// `uri` through `service` is answered with `body`, and a `Cache-Status` starting so.
async fn assert_served(service: &ConfiguredService<Origin>, uri: &str, body: &str, status: &str) {
    let (parts, got) = fetch(service, get(uri)).await;
    assert_eq!(got, body, "{uri}");
    assert!(cache_status(&parts).starts_with(status), "{uri}: {parts:?}");
}

#[tokio::test]
async fn a_failed_reload_keeps_the_running_configuration() {
    let (cache, service) = serving("name: first").await;
    let error = cache
        .reload(
            Config::from_yaml("name: second\npolicy: { ttl: 10s, refresh_before: 10s }").unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.path(), "policy.refresh_before");
    assert_eq!(cache.config().name.as_deref(), Some("first"));
    assert_served(&service, "/a", "call 1", "first; hit").await;
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_stack_and_its_entries() {
    let (cache, service) = serving("name: first").await;
    let reload = |yaml: &str| cache.reload(Config::from_yaml(yaml).unwrap());
    reload("name: second").await.unwrap();
    // The same stack: the entry is still there.
    assert_served(&service, "/a", "call 1", "second; hit").await;
    reload("name: third\nbackend: { moka: { max_bytes: 1 MiB } }")
        .await
        .unwrap();
    // A new stack starts empty.
    assert_served(&service, "/a", "call 2", "third; fwd=uri-miss").await;
}

#[tokio::test]
async fn a_configured_redis_tier_is_shared() {
    let server = RedisServer::start(&[]).await;
    let text = format!(
        "name: edge\nbackend:\n  compose:\n    write: sequential\n    l1: {{ moka: {{}} }}\n    l2: {{ redis: {{ url: \"{}\", prefix: \"cfg:\", compression: {{ algorithm: gzip }} }} }}\n",
        server.url()
    );
    shared_by_two_instances(&Config::from_yaml(&text).unwrap(), "detail=redis", false).await;
}

/// `config` written as YAML and as TOML reads back as itself.
fn assert_round_trips(config: &Config) {
    let yaml = config.to_yaml().unwrap();
    assert_eq!(&Config::from_yaml(&yaml).unwrap(), config, "{yaml}");
    let toml = config.to_toml().unwrap();
    assert_eq!(&Config::from_toml(&toml).unwrap(), config, "{toml}");
}

/// Two instances built from `config` (a memory tier in front of a shared one, written in
/// turn): what the first stores, the second, whose memory is empty, reads from the shared tier
/// (its `Cache-Status` says `detail`). With `restart`, the first is gone before the second is
/// built (a tier kept across restarts: the disk).
async fn shared_by_two_instances(config: &Config, detail: &str, restart: bool) {
    let origin = Origin::counting();
    let first = ConfiguredLayer::new(config.clone()).await.unwrap();
    fetch(&first.layer(origin.clone()), get("/shared")).await;
    // Written in turn (`write: sequential`): stored once the shared tier has it.
    let stored = || first.current().stats().stores == 1;
    layercake_tests::eventually("stored in both tiers", stored).await;
    if restart {
        drop(first);
    }
    let second = ConfiguredLayer::new(config.clone()).await.unwrap();
    let (parts, body) = fetch(&second.layer(origin.clone()), get("/shared")).await;
    assert_eq!(body, "call 1");
    assert!(cache_status(&parts).contains("hit"), "{parts:?}");
    assert!(cache_status(&parts).contains(detail), "{parts:?}");
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_memcached_tier_is_shared() {
    use layercake_tests::memcached_server::MemcachedServer;

    let server = MemcachedServer::start().await;
    let text = format!(
        r#"
backend:
  compose:
    write: sequential
    l1: {{ moka: {{}} }}
    l2:
      memcached:
        name: shared
        address: "{}"
        prefix: "cfg:"
        format: postcard
        compression: {{ algorithm: zstd, level: 3 }}
        max_item_size: 1 MiB
        timeout: 250ms
        connections: 2
        circuit_breaker: {{ failures: 3, cool_down: 1s }}
"#,
        server.address()
    );
    let config = Config::from_yaml(&text).unwrap();
    assert_round_trips(&config);
    shared_by_two_instances(&config, "detail=shared", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_disk_tier_answers_after_a_restart() {
    let dir = layercake_tests::disk_store::TempDir::new("config-disk");
    let text = format!(
        r#"
backend:
  compose:
    write: sequential
    l1: {{ moka: {{}} }}
    l2:
      disk:
        name: local
        directory: "{}"
        max_bytes: 64 MiB
        page_cache: 4 MiB
        format: postcard
        compression: {{ algorithm: zstd, level: 3 }}
        timeout: 1s
"#,
        dir.path().display()
    );
    let config = Config::from_yaml(&text).unwrap();
    assert_round_trips(&config);
    shared_by_two_instances(&config, "detail=local", true).await;
    // A reload that keeps the disk section keeps its store open, and what it holds.
    let running = ConfiguredLayer::new(config.clone()).await.unwrap();
    let smaller_memory = text.replace("l1: { moka: {} }", "l1: { moka: { max_bytes: 1 MiB } }");
    running
        .reload(Config::from_yaml(&smaller_memory).unwrap())
        .await
        .unwrap();
    let origin = Origin::counting();
    let (parts, body) = fetch(&running.layer(origin.clone()), get("/shared")).await;
    assert_eq!(body, "call 1", "stored before the reload");
    assert!(cache_status(&parts).contains("detail=local"), "{parts:?}");
    assert_eq!(origin.calls(), 0);
    // Other settings for the directory it holds: refused, naming the field.
    let other = text.replace("max_bytes: 64 MiB", "max_bytes: 32 MiB");
    let error = running
        .reload(Config::from_yaml(&other).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.path(), "backend.compose.l2.disk.directory");
    assert!(error.message().contains("other settings"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_redis_cluster_tier_is_shared() {
    use layercake_tests::redis_cluster::RedisCluster;

    let cluster = RedisCluster::start().await;
    let nodes: Vec<String> = cluster
        .urls()
        .into_iter()
        .map(|url| format!("\"{url}\""))
        .collect();
    let text = format!(
        "backend:\n  compose:\n    write: sequential\n    l1: {{ moka: {{}} }}\n    l2: {{ redis: {{ cluster: [{}], prefix: \"cfg:\" }} }}\n",
        nodes.join(", ")
    );
    let config = Config::from_yaml(&text).unwrap();
    let origin = Origin::counting();
    let first = ConfiguredLayer::new(config.clone()).await.unwrap();
    let second = ConfiguredLayer::new(config).await.unwrap();
    for n in 0..20 {
        fetch(&first.layer(origin.clone()), get(&format!("/spread/{n}"))).await;
    }
    let stored = || first.current().stats().stores == 20;
    layercake_tests::eventually("stored in both tiers", stored).await;
    for n in 0..20 {
        let (parts, _) = fetch(&second.layer(origin.clone()), get(&format!("/spread/{n}"))).await;
        assert!(cache_status(&parts).contains("detail=redis"), "{parts:?}");
    }
    assert_eq!(origin.calls(), 20);
}

/// Requests from several tasks while the configuration flips between two names: none fails,
/// and none that starts after a reload returned is served by the configuration before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_loses_nothing_and_mixes_nothing() {
    let cache = ConfiguredLayer::new(Config::from_yaml("name: gen0").unwrap())
        .await
        .unwrap();
    let origin = Origin::new(|_, n| async move {
        tokio::task::yield_now().await;
        Ok(text(StatusCode::OK, format!("call {n}")))
    });
    let service = cache.layer(origin);
    // The generation that a request starting now must see at least.
    let published = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for client in 0..4 {
        let (service, published, stop, served) = (
            service.clone(),
            published.clone(),
            stop.clone(),
            served.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(SeqCst) && n < 2_000 {
                let at_least = published.load(SeqCst);
                let (parts, body) = fetch(&service, get(&format!("/{client}/{}", n % 20))).await;
                assert_eq!(parts.status, StatusCode::OK);
                assert!(body.starts_with(b"call "), "{body:?}");
                let status = cache_status(&parts);
                let generation: usize = status
                    .strip_prefix("gen")
                    .and_then(|rest| rest.split(';').next())
                    .and_then(|g| g.parse().ok())
                    .unwrap_or_else(|| panic!("a name gen<N>: {status}"));
                assert!(
                    generation >= at_least,
                    "served by gen{generation} after gen{at_least} was in place"
                );
                served.fetch_add(1, SeqCst);
                n += 1;
            }
            n
        }));
    }
    for generation in 1..=20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let config = Config::from_yaml(&format!("name: gen{generation}")).unwrap();
        cache.reload(config).await.unwrap();
        published.store(generation, SeqCst);
    }
    stop.store(true, SeqCst);
    let mut sent = 0;
    for client in clients {
        sent += client.await.expect("no client failed");
    }
    assert_eq!(served.load(SeqCst), sent);
    assert!(sent > 0);
    assert_eq!(cache.config().name.as_deref(), Some("gen20"));
}

/// The reverse proxy example's `--config` and `SIGHUP`: the file is read again and the new
/// configuration serves, over a real origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_example_reloads_its_file_on_hangup() {
    use bytes::Bytes;
    use http_body_util::Full;
    use layercake_tests::{
        eventually,
        http_origin::{HttpOrigin, respond},
        reverse_proxy::{Upstream, config_file, reload_on_hangup},
    };

    let dir = std::env::temp_dir().join(format!("layercake-hangup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proxy.yaml");
    std::fs::write(&file, "name: before\n").unwrap();
    let args = ["--config".to_owned(), file.display().to_string()];
    assert_eq!(config_file(args.into_iter()), Some(file.clone()));

    let cache = ConfiguredLayer::from_file(&file).await.unwrap();
    reload_on_hangup(cache.clone(), file.clone()).unwrap();
    let origin = HttpOrigin::start(|_, n| async move {
        respond(200, &[("cache-control", "max-age=60")], format!("call {n}"))
    })
    .await;
    let proxy = cache.layer(Upstream::<Full<Bytes>>::new(origin.uri()));
    let (parts, _) = fetch(&proxy, get("/page")).await;
    assert!(
        cache_status(&parts).starts_with("before; fwd=uri-miss"),
        "{parts:?}"
    );

    std::fs::write(&file, "name: after\n").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually("the reload", || {
        cache.config().name.as_deref() == Some("after")
    })
    .await;
    let (parts, body) = fetch(&proxy, get("/page")).await;
    assert_eq!(body, "call 1");
    assert!(cache_status(&parts).starts_with("after; hit"), "{parts:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever the file holds, reading it is a value or an error, never a panic; text that
    /// reads is written back the same.
    #[test]
    fn any_text_reads_or_errs(text in "[a-z_:{}\\[\\], 0-9\n\"#=.-]{0,120}") {
        if let Ok(config) = Config::from_yaml(&text) {
            proptest::prop_assert_eq!(Config::from_yaml(&config.to_yaml().unwrap()).unwrap(), config);
        }
        if let Ok(config) = Config::from_toml(&text) {
            proptest::prop_assert_eq!(Config::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
    }
}

#[test]
fn deep_and_large_documents_are_errors_not_crashes() {
    let deep = format!("request: {}{}", "{ not: ".repeat(5_000), "}".repeat(5_000));
    assert!(Config::from_yaml(&deep).is_err());
    let deep = format!(
        "request = {}{}",
        "{ not = ".repeat(5_000),
        "}".repeat(5_000)
    );
    assert!(Config::from_toml(&deep).is_err());
    let error = yaml_error("policy: { ttl: 99999999999999999999999 }");
    assert_eq!(error.path(), "policy.ttl", "{error}");
}
