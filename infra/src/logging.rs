//! Logs as every Usher process writes them: JSON lines on stderr, filtered by `USHER_LOG`
//! (default `info`), with the current span's fields on each line.

/// Installs the subscriber once; later calls (tests) keep the first.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("USHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .try_init();
}
