//! `--watch`: hot reload of process functions. A function's code (its
//! program, its `CodeUri` tree; for a cargo binary, the project's Rust
//! sources and manifests) is fingerprinted every tick; on a change a cargo
//! function is rebuilt, then the pool moves to a new generation: later
//! invocations start fresh instances, the ones running finish on the old
//! code, and WebSocket connections are untouched. A failed build keeps the
//! old code running and says why.
//!
//! Polling, not OS notifications: it needs no dependency, behaves the same
//! on every file system (containers, network mounts), and a tick of a few
//! hundred ms is below what a person notices after saving.

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use super::launch::{self, Toolchain};
use super::pool::ProcessFunction;
use crate::template::FunctionSpec;

/// Directories never scanned: build output, VCS, dependencies, venvs.
const SKIPPED: [&str; 5] = ["target", ".git", "node_modules", ".venv", "__pycache__"];

/// At most this many files are fingerprinted per function per tick.
const MAX_FILES: usize = 20_000;

/// One watched function.
#[derive(Debug)]
pub(crate) struct Watched {
    pub(crate) pool: Weak<ProcessFunction>,
    pub(crate) spec: FunctionSpec,
    /// Built by cargo (rebuild on a source change).
    pub(crate) cargo: bool,
    /// The code to fingerprint: a cargo project, or the `CodeUri` tree.
    pub(crate) code: PathBuf,
    /// The program the function runs (a rebuild changes it).
    pub(crate) program: PathBuf,
}

impl Watched {
    /// What to watch for `spec` run by `program` from `task_root`: a cargo
    /// binary's project sources (`.rs`, `.toml`) and the binary; anything
    /// else's code tree and program.
    pub(crate) fn new(
        pool: Weak<ProcessFunction>,
        spec: &FunctionSpec,
        cargo: bool,
        program: &Path,
        task_root: &Path,
        project: &Path,
    ) -> Self {
        let code = if cargo { project } else { task_root };
        Self {
            pool,
            spec: spec.clone(),
            cargo,
            code: code.to_path_buf(),
            program: program.to_path_buf(),
        }
    }

    fn fingerprint(&self) -> u64 {
        let rust_only = |p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "rs" || e == "toml")
        };
        let roots = [self.code.clone(), self.program.clone()];
        fingerprint(&roots, &|p: &Path| {
            !self.cargo || rust_only(p) || p == self.program
        })
    }
}

/// Watches until every pool is gone (the emulator stopped).
pub(crate) async fn run(watched: Vec<Watched>, tools: Toolchain, tick: Duration) {
    let mut last: Vec<u64> = watched.iter().map(Watched::fingerprint).collect();
    loop {
        tokio::time::sleep(tick).await;
        let mut alive = false;
        for (w, seen) in watched.iter().zip(last.iter_mut()) {
            let Some(pool) = w.pool.upgrade() else {
                continue;
            };
            alive = true;
            let now = w.fingerprint();
            if now == *seen {
                continue;
            }
            if w.cargo
                && let Err(e) = launch::cargo_build(&[&w.spec], &tools).await
            {
                tracing::error!(function = %w.spec.logical_id, error = %e, "rebuild failed; the previous build keeps serving");
                *seen = now;
                continue;
            }
            let stopped = pool.reload();
            // The build itself changed the binary: fingerprint after it.
            *seen = w.fingerprint();
            tracing::info!(function = %w.spec.logical_id, stopped_warm = stopped, "code changed; new invocations start fresh instances");
        }
        if !alive {
            return;
        }
    }
}

/// A hash of the path, size and modification time of every file under
/// `roots` that `keep` accepts.
pub(crate) fn fingerprint(roots: &[PathBuf], keep: &dyn Fn(&Path) -> bool) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    let mut files = 0;
    for root in roots {
        walk(root, &mut files, &mut |path, meta| {
            if !keep(path) {
                return;
            }
            mix(path.as_os_str().as_encoded_bytes());
            mix(&meta.len().to_le_bytes());
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            mix(&modified.to_le_bytes());
        });
    }
    h
}

fn walk(path: &Path, files: &mut usize, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        if *files < MAX_FILES {
            *files += 1;
            visit(path, &meta);
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        let skipped = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| SKIPPED.contains(&n));
        if !skipped {
            walk(&child, files, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_moves_with_content_and_ignores_build_output() {
        let dir = std::env::temp_dir().join(format!("roomcast-watch-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("app.py"), "a").unwrap();
        let roots = vec![dir.clone()];
        let all = |_: &Path| true;
        let first = fingerprint(&roots, &all);
        assert_eq!(first, fingerprint(&roots, &all), "stable");
        std::fs::write(dir.join("target/out"), "ignored").unwrap();
        assert_eq!(first, fingerprint(&roots, &all), "target/ is not watched");
        std::fs::write(dir.join("notes.md"), "x").unwrap();
        let rust = |p: &Path| p.extension().is_some_and(|e| e == "rs");
        let rust_only = fingerprint(&roots, &rust);
        std::fs::write(dir.join("notes.md"), "xy").unwrap();
        assert_eq!(rust_only, fingerprint(&roots, &rust), "filtered out");
        std::fs::write(dir.join("app.py"), "ab").unwrap();
        assert_ne!(first, fingerprint(&roots, &all), "an edit is seen");
        let _ = std::fs::remove_dir_all(dir);
    }
}
