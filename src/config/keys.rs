//! The hashing keys: `secrets.pan_key`/`code_key` inline, else a key file; on an
//! embedded SQLite database the key file is created (mode 0600) beside it on first
//! start. A key file others can read is refused.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::schema::Settings;
use super::ConfigError;

impl Settings {
    pub fn key_file_path(&self) -> PathBuf {
        if let Some(p) = &self.secrets.key_file {
            return p.clone();
        }
        match sqlite_path(&self.database.url) {
            Some(db) => {
                let mut p = db.into_os_string();
                p.push(".key");
                PathBuf::from(p)
            }
            None => PathBuf::from("otpgw.key"),
        }
    }
}

/// The file behind a `sqlite:` URL, if it names one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Settings {
    /// The hashing keys: from `secrets.pan_key`/`code_key` if set, else from the key
    /// file. On SQLite a missing key file is created with mode 0600, so the embedded
    /// default works out of the box; on PostgreSQL every node must share the keys, so
    /// they have to be configured.
    pub fn keys(&self) -> Result<otpgw_rules::codes::Keys, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        match (&self.secrets.pan_key, &self.secrets.code_key) {
            (Some(p), Some(c)) => {
                return otpgw_rules::codes::Keys::from_hex(p.expose(), c.expose())
                    .map_err(|e| invalid(format!("secrets: {e}")))
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "secrets: set both pan_key and code_key, or neither".into(),
                ))
            }
        }
        let path = self.key_file_path();
        if path.exists() {
            return read_key_file(&path);
        }
        if sqlite_path(&self.database.url).is_none() {
            // A node inventing its own keys could never find a card another node enrolled.
            return Err(invalid(format!(
                "secrets: with a shared database set secrets.pan_key and secrets.code_key, or a key_file \
                 that exists ({} does not); they must be the same on every node",
                path.display()
            )));
        }
        let keys = otpgw_rules::codes::Keys::generate();
        write_key_file(&path, &keys)
            .map_err(|e| invalid(format!("cannot create key file {}: {e}", path.display())))?;
        tracing::warn!(path = %path.display(), "created a new key file (mode 0600); back it up: without it no enrolled card can be found");
        Ok(keys)
    }
}

/// `otpgw keys init PATH`: creates a key file of new random keys (mode 0600, never
/// over another file) and answers `true`; a key file already there is read and
/// checked instead (mode, format) and kept, answering `false`. For a one-shot step
/// that runs before every node (compose), so the keys are made once and shared.
pub fn init_key_file(path: &Path) -> Result<bool, ConfigError> {
    if path.exists() {
        read_key_file(path)?;
        return Ok(false);
    }
    let keys = otpgw_rules::codes::Keys::generate();
    write_key_file(path, &keys).map_err(|e| {
        ConfigError::Invalid(format!("cannot create key file {}: {e}", path.display()))
    })?;
    Ok(true)
}

fn read_key_file(path: &Path) -> Result<otpgw_rules::codes::Keys, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let invalid = |m: String| ConfigError::Invalid(m);
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        // Anyone who can read it can reverse every card hash offline; anyone who can
        // write it can make the gateway lose every card. Not a warning: a refusal.
        return Err(invalid(format!(
            "key file {} has mode {:o}: group and others must have no access; run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))?;
    #[derive(Deserialize)]
    struct KeyFile {
        pan_key: String,
        code_key: String,
    }
    let file: KeyFile = toml::from_str(&text)
        .map_err(|e| invalid(format!("key file {}: {}", path.display(), e.message())))?;
    otpgw_rules::codes::Keys::from_hex(&file.pan_key, &file.code_key)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))
}

fn write_key_file(path: &Path, keys: &otpgw_rules::codes::Keys) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "# otpgw hashing keys. Keep secret, back up, never change: cards and codes are found by them.")?;
    writeln!(file, "pan_key = \"{}\"", keys.pan_key_hex())?;
    writeln!(file, "code_key = \"{}\"", keys.code_key_hex())?;
    file.sync_all()
}
