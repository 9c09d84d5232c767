//! The operator commands that run and exit: `usher dlq …` and `usher health`.

use crate::cli::{DlqCmd, parse_queue};
use anyhow::{Context, bail};
use infra::{Backend, Settings};
use std::time::Duration;
use workers::dlq::{DeadLetters, ReplayOptions};

pub(crate) async fn dlq(settings: Settings, command: DlqCmd) -> anyhow::Result<()> {
    let backend = Backend::connect(&settings).await.context("cannot connect to the backend")?;
    let dead = DeadLetters::new(backend);
    match command {
        DlqCmd::List { json } => {
            let depths = dead.list().await?;
            if json {
                println!("{}", serde_json::to_string(&depths)?);
            } else {
                for d in depths {
                    println!("{} {}", d.queue, d.depth);
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
                println!("{}", serde_json::to_string(&messages)?);
            } else if messages.is_empty() {
                println!("{} is empty", queue.dlq().name());
            } else {
                for m in messages {
                    println!(
                        "{} request={} type={} receives={} failed_at={} reason={:?}\n  {}",
                        m.message_id,
                        m.request_id.as_deref().unwrap_or("-"),
                        m.message_type.as_deref().unwrap_or("-"),
                        m.receive_count,
                        m.failed_at.as_deref().unwrap_or("-"),
                        m.failure_reason.as_deref().unwrap_or("-"),
                        m.body
                    );
                }
            }
        }
        DlqCmd::Replay { queue, limit, rate, message_type, dry_run } => {
            let queue = parse_queue(&queue)?;
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                bail!("--rate must be a positive number of messages per second");
            }
            let options = ReplayOptions { limit, rate, message_type, dry_run };
            let report = dead.replay(queue, &options).await?;
            let verb = if dry_run { "would move" } else { "moved" };
            println!("{verb} {} skipped {} failed {}", report.moved, report.skipped, report.failed);
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
            println!("purged {}", queue.dlq().name());
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
    println!("ok");
    Ok(())
}
