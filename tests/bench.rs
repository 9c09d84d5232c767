//! `usher bench` against a running Usher, for correctness (docs/contract.md §1): every
//! scenario runs a small load and exits zero only if its invariants hold. Runs on the aws
//! backend too (`USHER_TEST_BACKEND=aws`, scripts/test.sh), where moto is far too slow for
//! numbers: BENCHMARKS.md measures the embedded backend.

mod support;

use support::{USHER, spawn_with};

/// The app's and the bench's shared secret (the bench mints its tokens with it).
const SECRET: &str = "usher-bench-test-secret-of-more-than-32-bytes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_its_invariants_hold() {
    let app = spawn_with(|config, _| {
        config.ingress.jwt_secret = Some(SECRET.to_owned().into());
        config.ingress.rate_limit = 0;
    })
    .await;
    let url = app.client.base.clone();
    for (scenario, requests) in [("holds", "40"), ("contention", "60"), ("mixed", "10")] {
        let out = tokio::process::Command::new(USHER)
            .args(["bench", "--url", &url, "--scenario", scenario, "--requests", requests])
            .args(["--connections", "4", "--seats", "50"])
            .env("USHER_JWT_SECRET", SECRET)
            .env_remove("USHER_JWT_ISSUER")
            .env_remove("USHER_JWT_AUDIENCE")
            .output()
            .await
            .expect("usher bench runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{scenario}: {stdout}\n{stderr}");
        assert!(stdout.contains("invariants ok"), "{scenario}: {stdout}");
        if scenario == "contention" {
            assert!(stdout.contains("booking.hold.place succeeded: 50"), "one winner per seat: {stdout}");
        }
    }
    app.stop().await;
}

/// What the bench sends first to a listener at `https://…` when run with `args`, and its
/// output. Nothing answers the handshake here.
async fn first_byte_over_https(args: &[&str]) -> (u8, String, std::process::Output) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("https://{}", listener.local_addr().expect("its address"));
    let bench = tokio::process::Command::new(USHER)
        .arg("bench")
        .args(["--url", &url])
        .args(args)
        .env("USHER_JWT_SECRET", SECRET)
        .output();
    // A bench without TLS would refuse the URL without ever connecting.
    let first_byte = async {
        let accepted = tokio::time::timeout(std::time::Duration::from_secs(30), listener.accept()).await;
        let (mut stream, _) = accepted.expect("the bench connects within 30 s").expect("accept");
        stream.read_u8().await.expect("the bench sends something")
    };
    let (first_byte, out) = tokio::join!(first_byte, bench);
    (first_byte, url, out.expect("usher bench runs"))
}

/// `--url https://…` (a deployment behind its load balancer, README "Deploying") is
/// reached over TLS: the first byte the bench sends is a TLS handshake record, not the
/// start of a plain HTTP request. Nothing answers the handshake here, so the bench then
/// exits non-zero with one line naming the URL.
#[tokio::test]
async fn an_https_url_is_reached_over_tls() {
    let (first_byte, url, out) = first_byte_over_https(&["--requests", "1"]).await;
    assert_eq!(first_byte, 0x16, "a TLS handshake record (a plain request would start with 'G', 0x47)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot reach {url}")), "{stderr}");
}

/// The timed requests go out on the bench's own connections (src/bench/wire.rs), not the
/// client of the setup: `--scenario baseline` has no setup, so its first request is one of
/// them, and it speaks TLS to an `https://` URL too. Its failed handshake is counted.
#[tokio::test]
async fn the_timed_requests_speak_tls_to_an_https_url() {
    let (first_byte, _, out) = first_byte_over_https(&["--scenario", "baseline", "--requests", "1"]).await;
    assert_eq!(first_byte, 0x16, "a TLS handshake record (a plain request would start with 'P', 0x50)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(r#"rejected   {"connect error": 1}"#), "{stdout}");
    assert!(stderr.contains("some requests were not answered 2xx"), "{stderr}");
}

/// Makes a self-signed certificate for `localhost` and its key in `dir` (`cert.pem`,
/// `key.pem`) with the openssl command line.
fn self_signed(dir: &std::path::Path) {
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("the openssl command line (apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
}

/// A TLS server answering every request `200 {}`, with a certificate [`self_signed`] makes
/// in `dir`; returns its port.
async fn tls_hello(dir: &std::path::Path) -> u16 {
    use hyper::service::service_fn;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    self_signed(dir);
    let cert = CertificateDer::from_pem_file(dir.join("cert.pem")).expect("the certificate");
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).expect("the key");
    let config = ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).expect("a TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let hello = service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from_static(b"{}"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), hello)
                    .await;
            });
        }
    });
    port
}

/// Over a handshake that completes: the bench verifies the server's certificate against
/// the system's roots (here `SSL_CERT_FILE`, as on any Linux host), and its timed
/// requests are answered over TLS. A server the roots do not vouch for is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timed_requests_are_answered_over_verified_tls() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = tls_hello(dir.path()).await;
    let url = format!("https://localhost:{port}");
    let bench = |roots: std::path::PathBuf| {
        tokio::process::Command::new(USHER)
            .args(["bench", "--url", &url, "--scenario", "baseline", "--requests", "200", "--connections", "4"])
            .env("USHER_JWT_SECRET", SECRET)
            .env("SSL_CERT_FILE", roots)
            .env_remove("SSL_CERT_DIR")
            .output()
    };
    let out = bench(dir.path().join("cert.pem")).await.expect("usher bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("accepted   200 of 200"), "{stdout}");
    // The same server, with roots that hold another certificate for the same name.
    let other = tempfile::tempdir().expect("a temp dir");
    self_signed(other.path());
    let out = bench(other.path().join("cert.pem")).await.expect("usher bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(r#"rejected   {"connect error": 200}"#), "{stdout}");
}
