//! The JWT secret: `USHER_JWT_SECRET` when set. Only `usher dev` may go without it: it
//! keeps a random one in `<data dir>/jwt-secret` (owner-only, written atomically), which
//! `usher token` on the same machine reads. `usher ingress` refuses to start without the
//! variable: a secret minted per host would split a fleet.

use crate::Config;
use anyhow::{Context, bail};
use ingress::auth::JwtSecret;
use ingress::config::MIN_SECRET_BYTES;
use secrecy::SecretString;
use std::io::Write;
use std::path::Path;

const FILE: &str = "jwt-secret";

/// Where a command may take its secret from, besides `USHER_JWT_SECRET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The variable only (`usher ingress`).
    Environment,
    /// Or the data dir's secret, if `usher dev` made one (`usher token`).
    DevFile,
    /// Or the data dir's secret, made now if missing (`usher dev`).
    DevFileCreated,
}

pub fn resolve(config: &Config, source: Source) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.ingress.jwt_secret {
        return Ok(JwtSecret::new(secret.clone()));
    }
    let data_dir = &config.backend.data_dir;
    let path = data_dir.join(FILE);
    if source == Source::Environment {
        bail!("USHER_JWT_SECRET is not set (at least {MIN_SECRET_BYTES} bytes; only `usher dev` makes its own)");
    }
    match std::fs::read_to_string(&path) {
        Ok(existing) => {
            let existing = existing.trim();
            if existing.len() < MIN_SECRET_BYTES {
                bail!("{} holds no valid secret; delete it or set USHER_JWT_SECRET", path.display());
            }
            return Ok(JwtSecret::new(SecretString::from(existing.to_owned())));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if source == Source::DevFile {
        bail!("USHER_JWT_SECRET is not set and {} does not exist (run `usher dev` once, or set it)", path.display());
    }
    infra::embedded::create_private_dir(data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let secret = JwtSecret::generate();
    write_atomically(&path, secret.expose().as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    // Another `usher dev` may have won the rename: everyone uses what is on disk.
    resolve(config, Source::DevFile)
}

/// Writes `contents` to `path` owner-only, all or nothing: a temp file beside it, synced,
/// renamed over `path`, and the directory synced so that the rename survives a crash.
/// If `path` exists already, it is left as it is.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{FILE}.{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        // A hard link fails if `path` exists, so a secret already in use is never replaced.
        match std::fs::hard_link(&temp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&temp);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dev_makes_a_secret_and_it_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let config = Config::embedded(&data_dir);
        let err = resolve(&config, Source::Environment).unwrap_err().to_string();
        assert!(err.contains("USHER_JWT_SECRET"), "{err}");
        assert!(resolve(&config, Source::DevFile).unwrap_err().to_string().contains("USHER_JWT_SECRET"));
        assert!(!data_dir.exists(), "nothing is created but by dev");

        let made = resolve(&config, Source::DevFileCreated).unwrap();
        assert!(made.expose().len() >= MIN_SECRET_BYTES);
        assert_eq!(resolve(&config, Source::DevFile).unwrap().expose(), made.expose(), "token reads dev's");
        assert_eq!(resolve(&config, Source::DevFileCreated).unwrap().expose(), made.expose(), "kept, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data_dir.join(FILE)), 0o600);
            assert_eq!(mode(&data_dir), 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&data_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(FILE)], "no temp file left behind");
    }

    #[test]
    fn the_variable_wins_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let key = "k".repeat(32);
        let config = Config::from_lookup(|name| match name {
            "USHER_JWT_SECRET" => Some(key.clone()),
            "USHER_DATA_DIR" => Some(dir.path().display().to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(resolve(&config, Source::Environment).unwrap().expose(), key);
    }
}
