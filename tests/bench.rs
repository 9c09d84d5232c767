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
