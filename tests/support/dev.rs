//! `usher dev` as a child process on a data dir, for the crash tests.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Dev {
    pub child: Child,
    pub base: String,
    /// An admin token, as `usher dev` prints it.
    pub token: String,
}

/// Starts `usher dev` on `dir` and waits for its address and admin token.
pub async fn start(dir: &Path) -> Dev {
    let mut child = Command::new(env!("CARGO_BIN_EXE_usher"))
        .arg("dev")
        .env("USHER_DATA_DIR", dir)
        .env("USHER_HTTP_ADDR", "127.0.0.1:0")
        .env("USHER_LOG", "warn")
        .env_remove("USHER_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("usher dev starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut token) = (None, None);
    while base.is_none() || token.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("usher dev prints its address")
            .unwrap()
            .expect("a line");
        if let Some(url) = line.strip_prefix("usher is listening on ") {
            base = Some(url.to_owned());
        } else if let Some(t) = line.strip_prefix("admin token (24 h): ") {
            token = Some(t.to_owned());
        }
    }
    Dev { child, base: base.unwrap(), token: token.unwrap() }
}
