//! The development signing secret: the HS256 key of `/dev/token`'s tokens
//! and of Roomcast's functions offline. Random per cache directory, made
//! once and kept readable by its owner only (`dev-secret`, mode 0600): a
//! secret the same on every machine would let any web page mint a token
//! offline and join the developer's local rooms.

use std::path::{Path, PathBuf};

use crate::private_dir::{self, PrivateDirError};

/// The file, in the cache directory.
const FILE: &str = "dev-secret";

/// Why the secret cannot be had. Each says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DevSecretError {
    /// The cache directory is not the developer's alone.
    #[error(transparent)]
    Directory(#[from] PrivateDirError),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Others may read it: delete it (a new one is made) or `chmod 600` it.
    #[error(
        "{path} is readable or writable by other users: delete it (a new secret is made at the next start) or chmod 600 it"
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
    },
}

/// The secret kept in `cache_dir`, made on first use.
pub fn load_or_create(cache_dir: &Path) -> Result<String, DevSecretError> {
    private_dir::ensure(cache_dir)?;
    let path = cache_dir.join(FILE);
    let io = |source| DevSecretError::Io {
        path: path.clone(),
        source,
    };
    let fresh = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    match private_dir::write_private(&path, &fresh) {
        Ok(()) => return Ok(fresh),
        // Made before (or by an emulator starting at the same moment).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(&path).map_err(io)?;
    if !meta.file_type().is_file() || !private_dir::private_file(&meta) {
        return Err(DevSecretError::NotPrivate { path });
    }
    let secret = std::fs::read_to_string(&path).map_err(io)?;
    let secret = secret.trim();
    if secret.len() < 32 {
        // Empty or cut short (a start that died while writing): not a
        // secret to sign with. Removing it makes a new one.
        return Err(DevSecretError::NotPrivate { path });
    }
    Ok(secret.to_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn one_random_secret_per_cache_directory_private_to_its_owner() {
        let a =
            std::env::temp_dir().join(format!("roomcast-secret-{}", uuid::Uuid::new_v4().simple()));
        let b = a.with_extension("other");
        let first = load_or_create(&a).unwrap();
        assert_eq!(load_or_create(&a).unwrap(), first, "kept");
        assert_ne!(load_or_create(&b).unwrap(), first, "random per directory");
        assert!(first.len() >= 64);
        let mode = std::fs::metadata(a.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A secret others can read is not used.
        std::fs::set_permissions(a.join(FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&a),
            Err(DevSecretError::NotPrivate { .. })
        ));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}
