//! Helpers shared by the integration tests: an origin service that counts its calls, bodies
//! that stream in chunks, and small readers of responses.

#![allow(missing_docs, unreachable_pub)]

use std::{
    collections::VecDeque,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// The body type of every origin response in the tests.
pub type TestBody = BoxBody<Bytes, Infallible>;
/// The origin's error type.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
type Handler = dyn Fn(
        Request<Full<Bytes>>,
        usize,
    ) -> Pin<Box<dyn Future<Output = Result<Response<TestBody>, Error>> + Send>>
    + Send
    + Sync;

/// A tower service standing for the origin: it counts its calls and answers with `handler`,
/// which is given the request and the call's number (1 for the first).
#[derive(Clone)]
pub struct Origin {
    calls: Arc<AtomicUsize>,
    handler: Arc<Handler>,
}

impl Origin {
    pub fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Full<Bytes>>, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<TestBody>, Error>> + Send + 'static,
    {
        Origin {
            calls: Arc::default(),
            handler: Arc::new(move |req, n| Box::pin(handler(req, n))),
        }
    }

    /// An origin that answers every request with 200 and `body`.
    pub fn ok(body: &'static str) -> Self {
        Origin::new(move |_, _| async move { Ok(text(StatusCode::OK, body)) })
    }

    /// An origin that answers `call N` (N its call's number), fresh for 60 seconds.
    pub fn counting() -> Self {
        Origin::new(|_, n| async move {
            let mut response = text(StatusCode::OK, format!("call {n}"));
            response.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("max-age=60"),
            );
            Ok(response)
        })
    }

    /// How many times the origin was called.
    pub fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }
}

impl tower::Service<Request<Full<Bytes>>> for Origin {
    type Response = Response<TestBody>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<TestBody>, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        let n = self.calls.fetch_add(1, SeqCst) + 1;
        (self.handler)(req, n)
    }
}

/// A response with `status` and a text body of known length.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
}

/// A body of known length.
pub fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).boxed()
}

/// A body sent in `chunks`, whose length is not known in advance.
pub fn chunked(chunks: impl IntoIterator<Item = Bytes>) -> TestBody {
    Chunks(chunks.into_iter().collect()).boxed()
}

struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A request with an empty body.
pub fn request(method: &str, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .expect("a valid request")
}

/// A GET request.
pub fn get(uri: &str) -> Request<Full<Bytes>> {
    request("GET", uri)
}

/// The response's status, headers and whole body.
pub async fn read<B>(response: Response<B>) -> (http::response::Parts, Bytes)
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts, body)
}

/// Sends `request` through a clone of `svc`, reads the whole response, then lets the store that
/// follows a miss finish: one request as a client sees it.
pub async fn fetch<S, B>(svc: &S, request: Request<Full<Bytes>>) -> (http::response::Parts, Bytes)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    let response = svc
        .clone()
        .oneshot(request)
        .await
        .expect("the service answers");
    let read = read(response).await;
    settle().await;
    read
}

/// The response's `Cache-Status` header.
pub fn cache_status(parts: &http::response::Parts) -> &str {
    parts
        .headers
        .get("cache-status")
        .map(HeaderValue::to_str)
        .and_then(Result::ok)
        .unwrap_or("<none>")
}

/// Lets background work (the store that follows a streamed miss) run to completion.
pub async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// A storage tier for tests: a `Moka` behind an artificial latency, that can be made to fail,
/// and that counts its calls. Like a remote tier, it cannot answer without waiting (no `peek`).
#[derive(Clone)]
pub struct TestTier {
    pub store: layercake::Moka,
    delay: std::time::Duration,
    failing: Arc<std::sync::atomic::AtomicBool>,
    pub gets: Arc<AtomicUsize>,
    pub sets: Arc<AtomicUsize>,
}

impl TestTier {
    pub fn new(delay: std::time::Duration) -> Self {
        TestTier {
            store: layercake::Moka::default(),
            delay,
            failing: Arc::default(),
            gets: Arc::default(),
            sets: Arc::default(),
        }
    }

    /// Makes every call fail (`true`) or work again (`false`).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, SeqCst);
    }

    async fn call(&self) -> Result<(), layercake::BackendError> {
        tokio::time::sleep(self.delay).await;
        if self.failing.load(SeqCst) {
            return Err(layercake::BackendError::new(
                layercake::BackendErrorKind::Unavailable,
                "the test tier is down",
            ));
        }
        Ok(())
    }
}

impl layercake::Tier for TestTier {}

impl<V: Send + Sync + 'static> layercake::Backend<V> for TestTier {
    async fn get(&self, key: &layercake::Key) -> layercake::backends::Lookup<V> {
        self.gets.fetch_add(1, SeqCst);
        self.call().await?;
        self.store.get(key).await
    }

    async fn set(
        &self,
        key: &layercake::Key,
        entry: Arc<layercake::Entry<V>>,
    ) -> Result<(), layercake::BackendError> {
        self.sets.fetch_add(1, SeqCst);
        self.call().await?;
        self.store.set(key, entry).await
    }

    async fn remove(&self, key: &layercake::Key) -> Result<(), layercake::BackendError> {
        self.call().await?;
        <layercake::Moka as layercake::Backend<V>>::remove(&self.store, key).await
    }

    async fn clear(&self) -> Result<(), layercake::BackendError> {
        self.call().await?;
        <layercake::Moka as layercake::Backend<V>>::clear(&self.store).await
    }
}

/// The servers the tests start as child processes: spawned, waited for until they answer on
/// their port, killed.
mod process {
    use std::{
        process::{Child, Command, Stdio},
        time::Duration,
    };

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    /// Starts `command` (its output discarded) and waits until it answers `probe` on `port`.
    pub(crate) async fn spawn(mut command: Command, port: u16, probe: &[u8]) -> Child {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is installed (scripts/setup installs it): {e}"));
        let mut child = Some(child);
        for _ in 0..250 {
            if answers(port, probe).await {
                return child.take().expect("spawned above");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill(&mut child);
        panic!("{program} did not start on port {port}");
    }

    async fn answers(port: u16, probe: &[u8]) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        if stream.write_all(probe).await.is_err() {
            return false;
        }
        let mut reply = [0u8; 64];
        matches!(stream.read(&mut reply).await, Ok(n) if n > 0)
    }

    /// Kills the process, if it runs (as a crash would: no goodbye).
    pub(crate) fn kill(child: &mut Option<Child>) {
        if let Some(mut child) = child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A real `redis-server` for the tests, on a free loopback port, stopped when dropped.
pub mod redis_server {
    use std::{
        net::TcpListener,
        process::{Child, Command},
        time::Duration,
    };

    /// A `redis-server` child process.
    pub struct RedisServer {
        child: Option<Child>,
        port: u16,
        args: Vec<String>,
    }

    impl RedisServer {
        /// Starts `redis-server` on a free port, with `args` added (e.g. `--requirepass`).
        pub async fn start(args: &[&str]) -> Self {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut server = RedisServer {
                child: None,
                port,
                args: args.iter().map(|a| a.to_string()).collect(),
            };
            server.restart().await;
            server
        }

        /// The port it listens on.
        pub fn port(&self) -> u16 {
            self.port
        }

        /// `redis://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// A store on this server under `prefix`, with a 500 ms timeout.
        pub fn store(&self, prefix: &str) -> layercake::Redis {
            layercake::Redis::builder()
                .url(self.url())
                .prefix(prefix)
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap()
        }

        /// A connection of the test's own, for raw commands.
        pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
            let client = redis::Client::open(self.url()).unwrap();
            client.get_multiplexed_async_connection().await.unwrap()
        }

        /// Stops the server (as a crash would: no goodbye).
        pub fn stop(&mut self) {
            super::process::kill(&mut self.child);
        }

        /// Starts the server again on the same port and waits until it answers.
        pub async fn restart(&mut self) {
            self.stop();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(&self.args);
            // `+PONG`, or `-NOAUTH` when a password is required: either way it is up.
            let child = super::process::spawn(command, self.port, b"PING\r\n").await;
            self.child = Some(child);
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

/// A real `memcached` for the tests, on a free loopback port, stopped when dropped.
pub mod memcached_server {
    use std::{
        net::TcpListener,
        process::{Child, Command},
        time::Duration,
    };

    /// A `memcached` child process.
    pub struct MemcachedServer {
        child: Option<Child>,
        port: u16,
    }

    impl MemcachedServer {
        /// Starts `memcached` on a free port (64 MiB, TCP only).
        pub async fn start() -> Self {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut server = MemcachedServer { child: None, port };
            server.restart().await;
            server
        }

        /// `127.0.0.1:<port>`.
        pub fn address(&self) -> String {
            format!("127.0.0.1:{}", self.port)
        }

        /// A store on this server under `prefix`, with a 500 ms timeout.
        pub fn store(&self, prefix: &str) -> layercake::Memcached {
            layercake::Memcached::builder()
                .address(self.address())
                .prefix(prefix)
                .timeout(Duration::from_millis(500))
                .build()
                .expect("a valid store")
        }

        /// Stops the server (its port stays ours: nothing else is started on it).
        pub fn stop(&mut self) {
            super::process::kill(&mut self.child);
        }

        /// Starts it again on the same port, empty.
        pub async fn restart(&mut self) {
            self.stop();
            let mut command = Command::new("memcached");
            command
                .args(["-l", "127.0.0.1", "-U", "0", "-m", "64", "-p"])
                .arg(self.port.to_string());
            // memcached refuses to run as root unless told which user to be.
            if std::env::var("USER").as_deref() == Ok("root") || is_root() {
                command.args(["-u", "root"]);
            }
            let child = super::process::spawn(command, self.port, b"version\r\n").await;
            self.child = Some(child);
        }
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
    }

    impl Drop for MemcachedServer {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

/// A real three-node Redis Cluster on loopback ports, for the tests; stopped when dropped.
pub mod redis_cluster {
    use std::{
        net::TcpListener,
        path::PathBuf,
        process::{Child, Command, Stdio},
        time::Duration,
    };

    /// Three `redis-server --cluster-enabled yes` nodes joined by `redis-cli --cluster create`.
    pub struct RedisCluster {
        nodes: Vec<Child>,
        ports: Vec<u16>,
        dir: PathBuf,
    }

    /// A free port whose cluster bus port (port + 10000) is free too.
    fn free_port() -> u16 {
        loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
                return port;
            }
        }
    }

    impl RedisCluster {
        /// Starts the nodes, creates the cluster and waits until it serves every slot.
        pub async fn start() -> Self {
            static CLUSTERS: std::sync::atomic::AtomicUsize =
                std::sync::atomic::AtomicUsize::new(0);
            let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir =
                std::env::temp_dir().join(format!("layercake-cluster-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let mut cluster = RedisCluster {
                nodes: Vec::new(),
                ports: Vec::new(),
                dir,
            };
            for _ in 0..3 {
                let (port, node) = cluster.start_node().await;
                cluster.ports.push(port);
                cluster.nodes.push(node);
            }
            let addresses: Vec<String> = cluster
                .ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            let created = Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("redis-cli is installed");
            assert!(created.success(), "redis-cli --cluster create failed");
            for port in &cluster.ports {
                cluster
                    .wait_for(*port, "CLUSTER INFO", "cluster_state:ok")
                    .await;
            }
            cluster
        }

        /// `redis://127.0.0.1:<port>` of every node.
        pub fn urls(&self) -> Vec<String> {
            self.ports
                .iter()
                .map(|p| format!("redis://127.0.0.1:{p}"))
                .collect()
        }

        /// Starts one node on a free port. A port found free can be taken before the node
        /// binds it (by another test's server, or a client connection's local port): then the
        /// node exits, and another port is tried.
        async fn start_node(&self) -> (u16, Child) {
            for _ in 0..10 {
                let port = free_port();
                let mut node = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--cluster-node-timeout", "5000"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&self.dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server is installed (.ci/run installs it)");
                for _ in 0..200 {
                    if node.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    let output = Command::new("redis-cli")
                        .args(["-p", &port.to_string(), "PING"])
                        .output();
                    if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")) {
                        return (port, node);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = node.kill();
                let _ = node.wait();
            }
            panic!("no Redis Cluster node could start on a free port in 10 tries");
        }

        async fn wait_for(&self, port: u16, command: &str, expect: &str) {
            for _ in 0..300 {
                let output = Command::new("redis-cli")
                    .args(["-p", &port.to_string()])
                    .args(command.split(' '))
                    .output();
                if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(expect)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("node {port} never answered {command} with {expect}");
        }
    }

    impl Drop for RedisCluster {
        fn drop(&mut self) {
            for node in &mut self.nodes {
                let _ = node.kill();
                let _ = node.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits until `done()` holds, checking every 5 ms for at most 5 s (for background work on a
/// multi-threaded runtime, such as a store reaching Redis); panics with `what` otherwise.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A real HTTP/1.1 origin (a hyper server on a free loopback port), and the reverse proxy of
/// `examples/reverse_proxy.rs` to put the layer in front of it.
pub mod http_origin {
    use std::{
        future::Future,
        net::SocketAddr,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering::SeqCst},
        },
    };

    use bytes::Bytes;
    use http::{Request, Response, Uri, header};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use layercake::{CacheLayer, Moka, layer::CacheService};
    use tower::Layer;

    pub use super::reverse_proxy::{ProxyBody, Upstream};

    /// The service the tests send requests to: the layer in front of the example's upstream.
    pub type Proxy = CacheService<Upstream<Full<Bytes>>, Moka>;

    /// A hyper server answering with a handler; counts its calls; stopped when dropped.
    pub struct HttpOrigin {
        addr: SocketAddr,
        calls: Arc<AtomicUsize>,
        server: tokio::task::JoinHandle<()>,
    }

    /// The `Date` header layercake's clock (tokio's, paused in the tests) gives now.
    pub fn now_date() -> String {
        httpdate::fmt_http_date(layercake::Timestamp::now().into())
    }

    /// An HTTP-date `secs` seconds from now (negative: ago) on the test clock.
    pub fn date_in(secs: i64) -> String {
        let now = layercake::Timestamp::now();
        let at = if secs >= 0 {
            now + std::time::Duration::from_secs(secs as u64)
        } else {
            now - std::time::Duration::from_secs(secs.unsigned_abs())
        };
        httpdate::fmt_http_date(at.into())
    }

    /// Advances the paused clock to the next whole second, so that an HTTP-date (whole
    /// seconds) says exactly the time it is: no fraction of a second counts as age.
    #[cfg(feature = "paused-clock")]
    pub async fn whole_second() {
        let millis = layercake::Timestamp::now().as_millis() % 1000;
        if millis != 0 {
            tokio::time::advance(std::time::Duration::from_millis(1000 - millis)).await;
        }
    }

    impl HttpOrigin {
        /// Starts the origin. `handler` gets the request (its body read whole) and the call's
        /// number (1 for the first); a response without `Date` gets one from the test clock.
        pub async fn start<F, Fut>(handler: F) -> Self
        where
            F: Fn(Request<Bytes>, usize) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Response<super::TestBody>> + Send + 'static,
        {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free loopback port");
            let addr = listener.local_addr().expect("bound");
            let calls = Arc::new(AtomicUsize::new(0));
            let handler = Arc::new(handler);
            let counter = Arc::clone(&calls);
            let server = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (handler, counter) = (Arc::clone(&handler), Arc::clone(&counter));
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let (handler, counter) = (Arc::clone(&handler), Arc::clone(&counter));
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let n = counter.fetch_add(1, SeqCst) + 1;
                            let mut response = handler(Request::from_parts(parts, body), n).await;
                            if !response.headers().contains_key(header::DATE) {
                                let date = now_date().parse().expect("a valid date");
                                response.headers_mut().insert(header::DATE, date);
                            }
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            HttpOrigin {
                addr,
                calls,
                server,
            }
        }

        /// An origin answering `v<n>` (n: the call's number) with `headers`, started on a
        /// whole second of the test clock (see [`whole_second`]).
        #[cfg(feature = "paused-clock")]
        pub async fn versions(headers: &'static [(&'static str, &'static str)]) -> Self {
            whole_second().await;
            HttpOrigin::start(move |_, n| async move { respond(200, headers, format!("v{n}")) })
                .await
        }

        /// `http://127.0.0.1:<port>`.
        pub fn uri(&self) -> Uri {
            format!("http://{}", self.addr)
                .parse()
                .expect("a valid URI")
        }

        /// How many requests the origin answered.
        pub fn calls(&self) -> usize {
            self.calls.load(SeqCst)
        }

        /// The layer in front of a hyper-util client to this origin.
        pub fn behind<K>(
            &self,
            layer: &CacheLayer<Moka, K>,
        ) -> CacheService<Upstream<Full<Bytes>>, Moka, K> {
            layer.layer(Upstream::new(self.uri()))
        }
    }

    impl Drop for HttpOrigin {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    /// A response with `status`, `headers` and `body`.
    pub fn respond(
        status: u16,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response<super::TestBody> {
        let mut response = Response::new(super::full(body));
        *response.status_mut() = http::StatusCode::from_u16(status).expect("a status code");
        for (name, value) in headers {
            response.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        response
    }

    /// A GET with these headers.
    pub fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
        let mut request = super::get(uri);
        for (name, value) in headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        request
    }
}

pub mod memory;

#[path = "../../examples/reverse_proxy.rs"]
#[allow(dead_code)]
pub mod reverse_proxy;

#[path = "../../examples/invalidation.rs"]
#[allow(dead_code)]
pub mod invalidation_example;

#[path = "../../examples/observability.rs"]
#[allow(dead_code)]
pub mod observability_example;

#[path = "../../examples/predicates.rs"]
#[allow(dead_code)]
pub mod predicates_example;

#[path = "../../examples/disk.rs"]
#[allow(dead_code)]
pub mod disk_example;

#[path = "../../examples/fleet.rs"]
#[allow(dead_code)]
pub mod fleet_example;

/// For the disk store's tests: a directory removed when dropped, and the values the crash
/// test's writer process writes.
pub mod disk_store {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system's temporary one, removed (with its contents) on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        /// A new, empty directory named after `what`.
        pub fn new(what: &str) -> TempDir {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("layercake-{what}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("creating a temporary directory");
            TempDir(path)
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The value the writer process stores under key `i` (a few hundred bytes, its own for
    /// every `i`).
    pub fn value(i: u64) -> String {
        format!("entry {i}; ").repeat(32)
    }

    /// The key the writer process stores value `i` under.
    pub fn key(i: u64) -> layercake::Key {
        layercake::Key::from_parts(["crash", &i.to_string()])
    }
}
