//! A caching reverse proxy: layercake's `CacheLayer` in shared mode in front of a hyper-util
//! client that forwards every request to one origin.
//!
//! ```text
//! UPSTREAM=http://127.0.0.1:8000 PORT=8080 cargo run -p layercake-examples --example reverse_proxy
//! curl -i http://127.0.0.1:8080/some/page      # Cache-Status: layercake; fwd=uri-miss; …
//! curl -i http://127.0.0.1:8080/some/page      # Cache-Status: layercake; hit; ttl=…
//! ```
//!
//! With a configuration file (`--config FILE` or `LAYERCAKE_CONFIG=FILE`; YAML or TOML, see
//! `examples/config/`), the cache is the one the file describes, and `SIGHUP` reloads it
//! without a restart:
//!
//! ```text
//! cargo run -p layercake-examples --example reverse_proxy -- --config examples/config/proxy.yaml
//! kill -HUP <pid>                                # reloaded, or the error and the old one kept
//! ```
//!
//! What the cache does not store passes through untouched: any method, any body (streamed
//! both ways), any status, the origin's headers. Only hop-by-hop headers are dropped, as a
//! proxy must (RFC 9110 §7.6.1). An origin that cannot be reached is answered `502`.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, Version, header, uri::PathAndQuery};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use layercake::{
    CacheLayer, Moka,
    config::ConfiguredLayer,
    layer::{CacheControl, CacheMode, remove_hop_by_hop},
};
use tokio::signal::unix::{SignalKind, signal};
use tower::{Layer, Service, ServiceExt};

/// What the proxy answers with: the origin's body, streamed, or a short one of its own (502).
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Forwards requests to one origin (scheme and authority from `upstream`; path and query from
/// the request).
pub struct Upstream<B> {
    client: Client<HttpConnector, B>,
    upstream: Uri,
}

impl<B> Clone for Upstream<B> {
    fn clone(&self) -> Self {
        Upstream {
            client: self.client.clone(),
            upstream: self.upstream.clone(),
        }
    }
}

impl<B> Upstream<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// An upstream service for the origin at `upstream` (e.g. `http://127.0.0.1:8000`).
    pub fn new(upstream: Uri) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Upstream { client, upstream }
    }
}

impl<B> Service<Request<B>> for Upstream<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let mut target = self.upstream.clone().into_parts();
        target.path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .or(Some(PathAndQuery::from_static("/")));
        parts.uri = Uri::from_parts(target).expect("the upstream's scheme and authority");
        remove_hop_by_hop(&mut parts.headers);
        // The origin's name, not the proxy's.
        parts.headers.remove(header::HOST);
        let forwarded = self.client.request(Request::from_parts(parts, body));
        Box::pin(async move {
            match forwarded.await {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    remove_hop_by_hop(&mut parts.headers);
                    // The version is per connection: ours with the client, not the origin's.
                    parts.version = Version::default();
                    Ok(Response::from_parts(parts, Either::Left(body)))
                }
                Err(error) => {
                    let mut response =
                        Response::new(Either::Right(Full::from(format!("bad gateway: {error}\n"))));
                    *response.status_mut() = StatusCode::BAD_GATEWAY;
                    Ok(response)
                }
            }
        })
    }
}

/// The proxy's cache: shared mode (the default), Moka, and the origin's freshness only
/// ([`CacheControl::OriginOnly`]): a shared cache in front of any origin must not invent a
/// lifetime for a response that says nothing of one (RFC 9111 §4.2). The ttl caps heuristic
/// lifetimes (a tenth of the time since `Last-Modified`).
pub fn cache() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default())
        .mode(CacheMode::Shared)
        .cache_control(CacheControl::OriginOnly)
        .ttl(Duration::from_secs(3600))
        .stale_if_error(Duration::from_secs(300))
        .build()
        .expect("a valid cache configuration")
}

/// The configuration file named by `--config FILE` (or `--config=FILE`) in `args`, else by
/// `LAYERCAKE_CONFIG`.
pub fn config_file(mut args: impl Iterator<Item = String>) -> Option<PathBuf> {
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(file) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(file));
        }
    }
    std::env::var_os("LAYERCAKE_CONFIG").map(PathBuf::from)
}

/// Reloads `cache` from `file` on every `SIGHUP`, for as long as the process runs: a file
/// that does not build is reported and the running configuration kept.
pub fn reload_on_hangup(
    cache: ConfiguredLayer,
    file: PathBuf,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match cache.reload_file(&file).await {
                Ok(()) => println!("reloaded {}", file.display()),
                Err(error) => eprintln!("kept the running configuration: {error}"),
            }
        }
    }))
}

#[allow(dead_code)] // also compiled into the tests, which serve the proxy themselves
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream: Uri = std::env::var("UPSTREAM")
        .unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned())
        .parse()?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let origin = Upstream::<Incoming>::new(upstream.clone());

    if let Some(file) = config_file(std::env::args().skip(1)) {
        let cache = match ConfiguredLayer::from_file(&file).await {
            Ok(cache) => cache,
            Err(error) => {
                eprintln!("{error}");
                std::process::exit(2);
            }
        };
        reload_on_hangup(cache.clone(), file.clone())?;
        println!(
            "caching reverse proxy on http://{addr} for {upstream}, configured by {} (pid {}; SIGHUP reloads)",
            file.display(),
            std::process::id()
        );
        tokio::select! {
            served = serve(listener, cache.layer(origin)) => served?,
            _ = tokio::signal::ctrl_c() => {}
        }
        println!("{:#?}", cache.current().stats());
        return Ok(());
    }

    let cache = cache();
    println!("caching reverse proxy on http://{addr} for {upstream}");
    tokio::select! {
        served = serve(listener, cache.layer(origin)) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{:#?}", cache.stats());
    Ok(())
}

/// Serves `service` over HTTP/1.1 on every connection `listener` accepts.
pub async fn serve<S>(listener: tokio::net::TcpListener, service: S) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<layercake::layer::CacheBody<ProxyBody>>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                service.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("connection error: {error}");
            }
        });
    }
}
