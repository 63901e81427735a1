//! The chunked layer in front of a real hyper origin serving a 64 MiB file with ranges:
//! scattered ranges are answered byte for byte, fetching only the chunks they need (the bytes
//! the origin sends are counted), later ranges come from the chunks they cover, the store stays
//! within its budget (its weighted size measured after every request), a whole GET streams from
//! chunks, a changed file is never mixed with the old one, and what is not for chunks passes
//! through.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::SeqCst},
};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use layercake::{
    Moka,
    chunked::{ChunkedLayer, ChunkedService},
};
use layercake_tests::http_origin::{HttpOrigin, Upstream, respond};
use tower::{Layer, ServiceExt};

const SIZE: usize = 64 << 20;
const CHUNK: u64 = 1 << 20;
const BUDGET: u64 = 16 << 20;

/// The file: 64 MiB in which every offset has its own byte pattern.
fn file() -> Bytes {
    (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// An origin serving `file` with ranges (`ETag` from `version`), counting the body bytes it
/// sends; when `ranges` is false it ignores `Range` (answers 200 with the whole body).
struct FileOrigin {
    origin: HttpOrigin,
    sent: Arc<AtomicU64>,
    version: Arc<AtomicU64>,
}

impl FileOrigin {
    async fn start(file: Bytes, ranges: bool) -> FileOrigin {
        FileOrigin::with_headers(file, ranges, &[]).await
    }

    /// The same origin, adding `extra` headers to every response.
    async fn with_headers(
        file: Bytes,
        ranges: bool,
        extra: &'static [(&'static str, &'static str)],
    ) -> FileOrigin {
        let sent = Arc::new(AtomicU64::new(0));
        let version = Arc::new(AtomicU64::new(1));
        let (counter, current) = (Arc::clone(&sent), Arc::clone(&version));
        let origin = HttpOrigin::start(move |request, _| {
            let (file, counter) = (file.clone(), Arc::clone(&counter));
            let etag = format!("\"v{}\"", current.load(SeqCst));
            async move {
                let len = file.len() as u64;
                let wanted = request
                    .headers()
                    .get(header::RANGE)
                    .filter(|_| ranges)
                    .and_then(|v| {
                        v.to_str()
                            .ok()?
                            .strip_prefix("bytes=")?
                            .split_once('-')
                            .map(|(a, b)| (a.parse::<u64>().ok(), b.parse::<u64>().ok()))
                    });
                let headers = |more: Vec<(&'static str, String)>| {
                    let mut all = vec![
                        ("etag", etag.clone()),
                        ("accept-ranges", "bytes".to_owned()),
                        ("cache-control", "max-age=3600".to_owned()),
                        ("content-type", "application/octet-stream".to_owned()),
                    ];
                    all.extend(more);
                    all.extend(extra.iter().map(|(n, v)| (*n, (*v).to_owned())));
                    all
                };
                let answer = |status, headers: Vec<(&'static str, String)>, body: Bytes| {
                    counter.fetch_add(body.len() as u64, SeqCst);
                    let headers: Vec<(&str, &str)> =
                        headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                    respond(status, &headers, body)
                };
                match wanted {
                    Some((Some(first), last)) if first < len => {
                        let last = last.unwrap_or(len - 1).min(len - 1);
                        let range = format!("bytes {first}-{last}/{len}");
                        let body = file.slice(first as usize..=last as usize);
                        answer(206, headers(vec![("content-range", range)]), body)
                    }
                    Some(_) => answer(
                        416,
                        headers(vec![("content-range", format!("bytes */{len}"))]),
                        Bytes::new(),
                    ),
                    None => answer(200, headers(vec![]), file),
                }
            }
        })
        .await;
        FileOrigin {
            origin,
            sent,
            version,
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(SeqCst)
    }
}

type Service = ChunkedService<Upstream<Full<Bytes>>, Moka>;

fn layer() -> ChunkedLayer<Moka> {
    ChunkedLayer::builder(Moka::builder().max_bytes(BUDGET).build())
        .chunk_size(CHUNK)
        .threshold(8 << 20)
        .max_fetch(4 * CHUNK)
        .build()
        .unwrap()
}

/// GETs `path` with `range` (if any): status, headers and the whole body.
async fn get(
    service: &Service,
    path: &str,
    range: Option<String>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut request = Request::get(path).body(Full::<Bytes>::default()).unwrap();
    if let Some(range) = range {
        request
            .headers_mut()
            .insert(header::RANGE, range.parse().unwrap());
    }
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// A deterministic stream of pseudo-random numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % below
    }
}

fn cache_status(headers: &http::HeaderMap) -> &str {
    headers
        .get("cache-status")
        .map_or("", |v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scattered_ranges_fetch_only_the_chunks_they_need_within_the_budget() {
    let file = file();
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    let mut random = Lcg(7);
    let mut needed = 0u64;
    for _ in 0..40 {
        let first = random.next(SIZE as u64 - 1);
        let len = 1 + random.next(200 * 1024);
        let last = (first + len - 1).min(SIZE as u64 - 1);
        let (status, headers, body) = get(
            &service,
            "/video.bin",
            Some(format!("bytes={first}-{last}")),
        )
        .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            headers[header::CONTENT_RANGE],
            format!("bytes {first}-{last}/{SIZE}").as_str()
        );
        assert_eq!(
            body,
            file.slice(first as usize..=last as usize),
            "{first}-{last}"
        );
        needed += last / CHUNK - first / CHUNK + 1;
        let held = layer.backend().weighted_size();
        assert!(
            held <= BUDGET,
            "the store holds {held} bytes, over {BUDGET}"
        );
    }
    // At most the chunks the requests needed, never the whole file.
    let sent = origin.sent();
    assert!(
        sent <= needed * CHUNK,
        "{sent} bytes sent for {needed} chunks"
    );
    assert!(sent < SIZE as u64 / 2, "{sent} bytes sent");
    assert_eq!(layer.stats().origin_bytes, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_ranges_come_from_the_chunks_they_cover() {
    let file = file();
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    let mut random = Lcg(11);
    // Ranges within chunks 10 to 13 (4 MiB), asked twice.
    let ranges: Vec<(u64, u64)> = (0..30)
        .map(|_| {
            let first = 10 * CHUNK + random.next(4 * CHUNK - 1);
            let last = (first + random.next(300 * 1024)).min(14 * CHUNK - 1);
            (first, last)
        })
        .collect();
    for (first, last) in &ranges {
        let (_, _, body) = get(&service, "/f", Some(format!("bytes={first}-{last}"))).await;
        assert_eq!(body, file.slice(*first as usize..=*last as usize));
    }
    let first_pass = origin.sent();
    assert!(first_pass <= 4 * CHUNK, "{first_pass} bytes for 4 chunks");
    for (first, last) in &ranges {
        let (status, headers, body) =
            get(&service, "/f", Some(format!("bytes={first}-{last}"))).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert!(cache_status(&headers).contains("hit"), "{headers:?}");
        assert_eq!(body, file.slice(*first as usize..=*last as usize));
    }
    assert_eq!(origin.sent(), first_pass, "nothing more from the origin");
    assert!(layer.stats().hits >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_get_streams_from_chunks_within_the_budget() {
    let file = file();
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    // First contact without a range: passed through whole, and learnt from.
    let (status, _, body) = get(&service, "/whole", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), SIZE);
    assert_eq!(layer.stats().passed, 1);
    let before = origin.sent();
    // Now from chunks, read as it is sent (each chunk fetched once, in runs of 4 MiB).
    let request = Request::get("/whole")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        SIZE.to_string().as_str()
    );
    let mut body = response.into_body();
    let (mut read, mut most_held) = (0usize, 0u64);
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert_eq!(data, file.slice(read..read + data.len()), "at {read}");
        read += data.len();
        most_held = most_held.max(layer.backend().weighted_size());
    }
    assert_eq!(read, SIZE);
    assert!(most_held <= BUDGET, "the store held {most_held} bytes");
    assert_eq!(
        origin.sent() - before,
        SIZE as u64,
        "each byte fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_never_mixed_with_the_old_one() {
    let file = file();
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    get(&service, "/doc", Some("bytes=0-99".to_owned())).await;
    // The file changes; a range beyond the first chunk needs the origin, which says so.
    origin.version.store(2, SeqCst);
    let request = Request::get("/doc")
        .header(header::RANGE, format!("bytes=0-{}", 3 * CHUNK))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    let read = response.into_body().collect().await;
    assert!(
        read.is_err(),
        "the body ends with an error, not with bytes of two versions"
    );
    assert_eq!(layer.stats().changed, 1);
    // The next request learns the new version.
    let (status, headers, body) = get(&service, "/doc", Some("bytes=0-99".to_owned())).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::ETAG], "\"v2\"");
    assert_eq!(body, file.slice(0..100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_for_chunks_passes_through() {
    let file = file();
    // An origin without ranges: its 200 goes to the client as it is.
    let plain = FileOrigin::start(file.slice(..10 << 20), false).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(plain.origin.uri()));
    let (status, _, body) = get(&service, "/big", Some("bytes=5-9".to_owned())).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 10 << 20));
    let (status, _, _) = get(&service, "/big", Some("bytes=5-9".to_owned())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(layer.stats().chunks_stored, 0);

    // A file under the threshold: ranges are the origin's.
    let small = FileOrigin::start(file.slice(..1 << 20), true).await;
    let layer = self::layer();
    let service = layer.layer(Upstream::new(small.origin.uri()));
    let (status, headers, body) = get(&service, "/small", Some("bytes=10-19".to_owned())).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, file.slice(10..20));
    assert!(!cache_status(&headers).contains("chunks"));
    assert_eq!(layer.stats().chunks_stored, 0);

    // An unsatisfiable range of a chunked file: 416, from what is known.
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = self::layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    get(&service, "/f", Some("bytes=0-0".to_owned())).await;
    let (status, headers, _) =
        get(&service, "/f", Some(format!("bytes={SIZE}-{}", SIZE + 10))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes */{SIZE}").as_str()
    );
    // A conditional GET naming the file: 304 from what is known.
    let request = Request::get("/f")
        .header(header::IF_NONE_MATCH, "\"v1\"")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_one_users_is_never_kept_in_chunks() {
    let file = file();
    // A response that sets a cookie: the origin's, every time.
    let origin =
        FileOrigin::with_headers(file.slice(..10 << 20), true, &[("set-cookie", "id=1")]).await;
    let layer = layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    for _ in 0..2 {
        let (status, _, body) = get(&service, "/mine", Some("bytes=0-9".to_owned())).await;
        assert_eq!(
            (status, body),
            (StatusCode::PARTIAL_CONTENT, file.slice(0..10))
        );
    }
    assert_eq!(layer.stats().chunks_stored, 0);
    // A request with credentials is passed on as it is, even for a file kept in chunks.
    let origin = FileOrigin::start(file.clone(), true).await;
    let layer = self::layer();
    let service = layer.layer(Upstream::new(origin.origin.uri()));
    get(&service, "/f", Some("bytes=0-9".to_owned())).await;
    let stored = layer.stats().chunks_stored;
    let request = Request::get("/f")
        .header(header::RANGE, "bytes=0-9")
        .header(header::AUTHORIZATION, "Bearer secret")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert!(!cache_status(response.headers()).contains("chunks"));
    assert_eq!(layer.stats().passed, 1);
    assert_eq!(layer.stats().chunks_stored, stored);
}
