//! `usher dev` as a child process on a data dir: for the crash tests and the benchmark.

use crate::client::Client;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Dev {
    pub child: Child,
    /// A client of it, with the admin token `usher dev` prints.
    pub client: Client,
}

impl Dev {
    /// Starts `usher dev` (the binary at `usher`, e.g. `env!("CARGO_BIN_EXE_usher")`) on
    /// `dir`, and waits for its address and admin token. Killed when dropped.
    pub async fn start(usher: &str, dir: &Path) -> Dev {
        let mut child = Command::new(usher)
            .arg("dev")
            .env("USHER_DATA_DIR", dir)
            .env("USHER_HTTP_ADDR", "127.0.0.1:0")
            .env("USHER_LOG", "warn")
            // Load drivers: one token sends thousands of commands and holds many seats.
            .env("USHER_RATE_LIMIT", "0")
            .env("USHER_MAX_HELD_SEATS", "1000000")
            .env_remove("USHER_BACKEND")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("usher dev starts");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let (mut base, mut token) = (None, None);
        while base.is_none() || token.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("usher dev prints its address")
                .expect("its stdout reads")
                .expect("a line");
            if let Some(url) = line.strip_prefix("usher is listening on ") {
                base = Some(url.to_owned());
            } else if let Some(t) = line.strip_prefix("admin token (24 h): ") {
                token = Some(t.to_owned());
            }
        }
        Dev { child, client: Client::new(base.expect("an address"), token.expect("a token")) }
    }
}
