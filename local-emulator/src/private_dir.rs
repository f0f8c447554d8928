//! Directories only the developer can write (docs/security.md): the cache
//! holds the local CA's key, the development signing secret and the
//! runtime shims functions run, so another user of the same machine who
//! could write there could plant a CA, read the secret or run code as the
//! developer. Each directory is created 0700; one that exists must be a
//! real directory (not a link), owned by the developer, and writable by
//! nobody else. Nothing is trusted because it already exists.

use std::path::{Path, PathBuf};

/// Why a directory cannot be used. Each says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// It could not be created or inspected.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another user owns it: it may hold what they planted. Use another
    /// directory (`--cache-dir`), or remove this one.
    #[error(
        "{path} belongs to another user (uid {owner}): it may hold files they planted; pass --cache-dir with a directory of your own, or remove it"
    )]
    NotOwned {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// Others may write in it. `chmod 700` it (then check what is inside).
    #[error(
        "{path} is writable by other users (mode {mode:o}): run chmod 700 {path:?} and check its files, or pass another --cache-dir"
    )]
    OpenToOthers {
        /// The directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// It is a symbolic link or not a directory.
    #[error(
        "{path} is not a directory of its own (a link, or a file): remove it or pass another --cache-dir"
    )]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
}

/// Creates `dir` (mode 0700) or checks the one there.
pub fn ensure(dir: &Path) -> Result<(), PrivateDirError> {
    let io = |source| PrivateDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check(dir, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            create(dir).map_err(io)?;
            // Made now, or by another emulator starting at the same moment:
            // check it either way.
            let meta = std::fs::symlink_metadata(dir).map_err(io)?;
            check(dir, &meta)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn create(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check(dir: &Path, meta: &std::fs::Metadata) -> Result<(), PrivateDirError> {
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_dir() {
        return Err(PrivateDirError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(PrivateDirError::NotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PrivateDirError::OpenToOthers {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check(dir: &Path, meta: &std::fs::Metadata) -> Result<(), PrivateDirError> {
    if meta.file_type().is_dir() {
        Ok(())
    } else {
        Err(PrivateDirError::NotADirectory {
            path: dir.to_path_buf(),
        })
    }
}

/// Whether a file may hold a secret: readable and writable by its owner
/// only (mode 0600 or stricter).
#[cfg(unix)]
pub(crate) fn private_file(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.mode() & 0o077 == 0 && meta.uid() == rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
pub(crate) fn private_file(_meta: &std::fs::Metadata) -> bool {
    true
}

/// The effective user id, for per-user names (`/tmp/roomcast-cache-1000`).
#[cfg(unix)]
pub(crate) fn user_id() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
pub(crate) fn user_id() -> u32 {
    0
}

/// Writes `text` to a new file readable by its owner only.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!(
            "roomcast-private-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    #[test]
    fn a_new_directory_is_the_owners_alone() {
        let dir = scratch().join("cache");
        ensure(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure(&dir).unwrap();
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn a_directory_others_can_write_or_a_link_is_refused() {
        let dir = scratch();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure(&dir).unwrap_err();
        assert!(matches!(err, PrivateDirError::OpenToOthers { .. }), "{err}");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        // Readable by others is fine: the secrets inside are 0600.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure(&dir).unwrap();
        let link = dir.with_extension("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(matches!(
            ensure(&link),
            Err(PrivateDirError::NotADirectory { .. })
        ));
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_users_directory_is_refused() {
        // As root, a directory handed to another uid; as anyone else, one
        // root owns.
        let (dir, cleanup) = if user_id() == 0 {
            let dir = scratch();
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            (dir, true)
        } else {
            (PathBuf::from("/"), false)
        };
        let err = ensure(&dir).unwrap_err();
        assert!(matches!(err, PrivateDirError::NotOwned { .. }), "{err}");
        if cleanup {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
