//! `rediss://`: the Redis store over TLS, against a real `redis-server --tls-port` with a
//! certificate made for the test.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use layercake::{Cache, redis::Redis};

struct TlsRedis {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Certificates made with openssl, and redis-server speaking only TLS.
async fn start() -> TlsRedis {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("layercake-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA, and a server certificate for 127.0.0.1 signed by it (rustls refuses a CA
    // certificate used as the server's own).
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.pem -subj /CN=layercake-test-ca",
        "req -newkey rsa:2048 -nodes -keyout key.pem -out server.csr -subj /CN=localhost",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 1 -extfile ext.cnf",
    ] {
        let made = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(made.success(), "openssl {args}");
    }
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
        .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let server = TlsRedis { child, dir, port };
    for _ in 0..250 {
        let pong = Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                "ca.pem",
                "-p",
                &port.to_string(),
                "PING",
            ])
            .current_dir(&server.dir)
            .output();
        if pong.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis-server with TLS did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_urls_connect_over_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = start().await;
    let pem = std::fs::read(server.dir.join("ca.pem")).unwrap();
    let store = Redis::builder()
        .url(format!("rediss://127.0.0.1:{}", server.port))
        .tls_root_certificate(pem)
        .prefix("tls:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let cache: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    cache.insert("k", "over tls".to_owned()).await;
    assert_eq!(cache.get("k").await.as_deref(), Some("over tls"));
    assert_eq!(store.stats().errors, 0);

    // Plain redis:// to a TLS-only port: no answer, read as a miss, never an error upward.
    let plain = Redis::builder()
        .url(format!("redis://127.0.0.1:{}", server.port))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let plain: Cache<String, Redis> = Cache::builder(plain).build().unwrap();
    assert_eq!(plain.get("k").await, None);
}
