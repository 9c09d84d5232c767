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
