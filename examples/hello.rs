//! The baseline of BENCHMARKS.md: an axum hello-world that answers `POST /` with a small
//! JSON body, on the same runtime, HTTP stack and allocator (jemalloc, with
//! the same options) as Usher's ingress.
//! It stores nothing, so its rate is what this machine's HTTP stack can do; Usher's
//! admission rate is compared with it in the same run.
//!
//! `cargo run --release --example hello -- 127.0.0.1:8099`

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

usher::jemalloc!();

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8099".to_owned());
    let app = axum::Router::new().route("/", post(|Json(_): Json<Value>| async { Json(json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("hello listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
