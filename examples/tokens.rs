//! Customer tokens for a load generator that cannot sign them: `scripts/bench-wrk.sh`
//! drives holds with wrk, and every hold needs its own customer, as in `usher bench`, so
//! that the hold cap (which counts a customer's held seats) never binds.
//!
//! `USHER_JWT_SECRET=… cargo run --release --example tokens -- PREFIX COUNT` prints COUNT
//! tokens, one a line, for the customers `PREFIX0` to `PREFIX<COUNT-1>`, each as `usher
//! token --role customer --ttl 1h` would mint it, from the same configuration.

use anyhow::Context;
use domain::actor::Role;
use ingress::auth::mint_token_for;
use std::io::Write;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(prefix), Some(count), None) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: tokens PREFIX COUNT");
    };
    let count: usize = count.parse().context("COUNT must be a whole number")?;
    // The secret, issuer and audience `usher token` would use.
    let config = usher::Config::from_env()?;
    let secret = usher::secret::resolve(&config, usher::secret::Source::DevFile)?;
    let to = config.ingress.audience();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let token = mint_token_for(&secret, &format!("{prefix}{i}"), Role::Customer, Duration::from_secs(3600), &to);
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    Ok(())
}
