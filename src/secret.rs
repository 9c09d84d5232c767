//! The JWT secret: `USHER_JWT_SECRET` when set; otherwise a random one kept in
//! `<data dir>/jwt-secret`, created on first use so `usher dev`, `usher ingress` and
//! `usher token` on one machine agree.

use crate::Config;
use anyhow::Context;
use ingress::auth::JwtSecret;
use secrecy::SecretString;
use std::io::Write;

const FILE: &str = "jwt-secret";

pub fn resolve(config: &Config) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.ingress.jwt_secret {
        return Ok(JwtSecret::new(secret.clone()));
    }
    let data_dir = &config.backend.data_dir;
    let path = data_dir.join(FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        anyhow::ensure!(!existing.is_empty(), "{} is empty; delete it or set USHER_JWT_SECRET", path.display());
        return Ok(JwtSecret::new(SecretString::from(existing.to_owned())));
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let secret = JwtSecret::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.expose().as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => resolve(config),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
