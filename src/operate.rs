//! The operator commands that run and exit: `usher dlq …`, `usher status` and
//! `usher health`.

use crate::cli::{DlqCmd, parse_queue};
use anyhow::{Context, bail};
use infra::{Backend, Settings};
use std::io::Write as _;
use std::time::Duration;
use workers::dlq::{DeadLetters, ReplayOptions};

pub(crate) async fn dlq(settings: Settings, command: DlqCmd) -> anyhow::Result<()> {
    let backend = Backend::connect_existing(&settings).await.context("cannot connect to the backend")?;
    let dead = DeadLetters::new(backend);
    match command {
        DlqCmd::List { json } => {
            let depths = dead.list().await?;
            if json {
                out!("{}", serde_json::to_string(&depths)?)?;
            } else {
                for d in depths {
                    out!("{} {}", d.queue, d.depth)?;
                }
            }
        }
        DlqCmd::Peek { queue, limit, json } => {
            let queue = parse_queue(&queue)?;
            if limit == 0 || limit > 1000 {
                bail!("--limit must be between 1 and 1000");
            }
            let messages = dead.peek(queue, limit).await?;
            if json {
                out!("{}", serde_json::to_string(&messages)?)?;
            } else if messages.is_empty() {
                out!("{} is empty", queue.dlq().name())?;
            } else {
                for m in messages {
                    out!(
                        "{} request={} type={} receives={} failed_at={} reason={:?}\n  {}",
                        m.message_id,
                        m.request_id.as_deref().unwrap_or("-"),
                        m.message_type.as_deref().unwrap_or("-"),
                        m.receive_count,
                        m.failed_at.as_deref().unwrap_or("-"),
                        m.failure_reason.as_deref().unwrap_or("-"),
                        m.body
                    )?;
                }
            }
        }
        DlqCmd::Replay { queue, limit, rate, message_type, dry_run } => {
            let queue = parse_queue(&queue)?;
            if limit == Some(0) {
                bail!("--limit must be at least 1 (leave it out to replay every message)");
            }
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                bail!("--rate must be a positive number of messages per second");
            }
            if let Some(name) = message_type.as_deref().filter(|name| !domain::command::is_message_type(name)) {
                bail!("--type {name:?} is no command or event type (usher dlq peek shows each message's type)");
            }
            let options = ReplayOptions { limit, rate, message_type, dry_run };
            let report = dead.replay(queue, &options).await?;
            let verb = if dry_run { "would move" } else { "moved" };
            out!("{verb} {} skipped {} failed {}", report.moved, report.skipped, report.failed)?;
            if report.failed > 0 {
                bail!("{} messages could not be replayed; they are still in {}", report.failed, queue.dlq().name());
            }
        }
        DlqCmd::Purge { queue, yes } => {
            let queue = parse_queue(&queue)?;
            if !yes {
                bail!("purging {} cannot be undone; pass --yes", queue.dlq().name());
            }
            dead.purge(queue).await?;
            out!("purged {}", queue.dlq().name())?;
        }
    }
    Ok(())
}

/// One plain HTTP/1.1 GET of /health/live with a short timeout; any answer but 200 fails.
pub(crate) fn health(mut addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let timeout = Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).with_context(|| format!("no answer from {addr}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.lines().next().unwrap_or("").to_owned();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{addr} answered {status:?} on /health/live");
    }
    out!("ok")?;
    Ok(())
}

/// How often `usher status --watch` redraws.
const WATCH_EVERY: Duration = Duration::from_secs(2);

pub(crate) async fn status(settings: Settings, watch: bool, json: bool) -> anyhow::Result<()> {
    let backend = Backend::connect_existing(&settings).await.context("cannot connect to the backend")?;
    if json {
        let status = infra::status::gather(&backend).await.context("cannot read the status")?;
        out!("{}", serde_json::to_string(&status)?)?;
        return Ok(());
    }
    if !watch {
        let status = infra::status::gather(&backend).await.context("cannot read the status")?;
        write!(std::io::stdout().lock(), "{}", render_status(&status))?;
        return Ok(());
    }
    let keys = Keys::listen();
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    let result = loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = keys.quit() => break Ok(()),
        }
        match infra::status::gather(&backend).await {
            // Home, draw, clear what is left of the previous frame.
            Ok(status) => {
                let mut stdout = std::io::stdout().lock();
                let drawn = write!(
                    stdout,
                    "\x1b[H\x1b[2J{}\nupdated {} · every 2 s · q quits\n",
                    render_status(&status),
                    domain::clock::format(domain::clock::now())
                )
                .and_then(|()| stdout.flush());
                if let Err(e) = drawn {
                    break Err(e.into());
                }
            }
            Err(e) => break Err(anyhow::Error::new(e).context("cannot read the status")),
        }
    };
    drop(keys);
    result
}

/// The status as a table: one line per queue, then the outbox.
pub(crate) fn render_status(status: &infra::status::Status) -> String {
    let age = |a: Option<f64>| a.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s"));
    let mut out = format!("{:<18} {:>8} {:>10} {:>11} {:>6}\n", "QUEUE", "VISIBLE", "IN FLIGHT", "OLDEST AGE", "DLQ");
    for q in &status.queues {
        out += &format!(
            "{:<18} {:>8} {:>10} {:>11} {:>6}\n",
            q.queue,
            q.visible,
            q.in_flight,
            age(q.oldest_age_seconds),
            q.dlq_depth
        );
    }
    out += &format!("outbox: {} pending, oldest {}\n", status.outbox.pending, age(status.outbox.oldest_age_seconds));
    out
}

/// `q` on a terminal's stdin, read unbuffered: the terminal is put in non-canonical mode
/// with `stty` for as long as this lives, and restored on drop.
struct Keys {
    saved: Option<String>,
    quit: std::sync::Arc<tokio::sync::Notify>,
}

impl Keys {
    fn listen() -> Keys {
        use std::io::{IsTerminal, Read};
        let saved = std::io::stdin()
            .is_terminal()
            .then(|| stty(&["-g"]))
            .flatten()
            .filter(|_| stty(&["-icanon", "-echo", "min", "1"]).is_some());
        let quit = std::sync::Arc::new(tokio::sync::Notify::new());
        if saved.is_some() {
            let pressed = std::sync::Arc::clone(&quit);
            // Blocks on stdin; left behind at exit, it holds nothing that needs cleaning up.
            std::thread::spawn(move || {
                let mut byte = [0u8; 1];
                while std::io::stdin().read(&mut byte).is_ok_and(|n| n == 1) {
                    if byte[0].eq_ignore_ascii_case(&b'q') {
                        // A stored permit: the next `quit()` returns even if none waits now.
                        pressed.notify_one();
                        return;
                    }
                }
            });
        }
        Keys { saved, quit }
    }

    async fn quit(&self) {
        if self.saved.is_none() {
            return std::future::pending().await;
        }
        self.quit.notified().await;
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = stty(&[saved.trim()]);
        }
    }
}

/// Runs `stty` on the terminal (stdin); its output, or `None` if it failed.
fn stty(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("stty")
        .args(args)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
