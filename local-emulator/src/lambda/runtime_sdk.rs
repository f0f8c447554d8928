//! What Lambda's managed runtimes ship beside a function's code: the AWS
//! SDK for JavaScript v3 in `nodejs18.x` and later, boto3 in `python3.x`.
//!
//! AWS Lambda Developer Guide, "Building Lambda functions with Node.js":
//! "Runtime versions nodejs18.x and later include version 3 of the SDK";
//! "Building Lambda functions with Python": the runtime "includes the AWS
//! SDK for Python (Boto3)". "Defined runtime environment variables" lists
//! `NODE_PATH` (the runtime's `node_modules` after the layers') and
//! `PYTHONPATH` (`$LAMBDA_RUNTIME_DIR`) as where they are found.
//!
//! The emulator cannot ship hundreds of SDK packages, so it installs what
//! a function's code names, pinned, into a cache it names in its log, at
//! start-up (so never against a function's init or timeout). A package the
//! function bundles itself is left alone and wins, as in Lambda: Node
//! resolves the function's own `node_modules` first, and Python finds the
//! task root before `PYTHONPATH`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::template::FunctionSpec;

/// The AWS SDK for JavaScript v3 the emulator installs (`@aws-sdk/*`).
pub const NODE_SDK_VERSION: &str = "3.1178.0";
/// The boto3 the emulator installs when its Python has none.
pub const BOTO3_VERSION: &str = "1.44.18";

/// How long one install may take before it is reported as failed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Source files read when looking for SDK imports: larger ones are
/// bundles, which carry their own copy.
const MAX_SOURCE_BYTES: u64 = 2 * 1024 * 1024;

/// Why the SDK a function imports could not be provided. Each says what
/// to do instead.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RuntimeSdkError {
    /// The install failed (offline, no npm or pip, a registry error).
    #[error(
        "function {function}: its code imports {packages}, which Lambda's {runtime} runtime provides; installing them into {cache} failed: {reason}. Run `roomcast runtimes install --template <template>` where the package registry is reachable, or add them to the function's own dependencies"
    )]
    Install {
        /// The logical id.
        function: String,
        /// The template's `Runtime`.
        runtime: String,
        /// What was to be installed.
        packages: String,
        /// The cache directory.
        cache: String,
        /// What went wrong (the installer's last lines).
        reason: String,
    },
}

/// Where installed SDKs are kept: `ROOMCAST_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/roomcast`, else `~/.cache/roomcast`.
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(&|k| std::env::var_os(k))
}

/// `default_cache_dir` from these variables.
fn cache_dir_from(var: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(dir) = var("ROOMCAST_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("roomcast");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("roomcast"),
        // No home: a directory of this user's in the shared temporary
        // directory, which the emulator checks is its own (another user
        // could have made it first: `crate::private_dir`).
        None => {
            std::env::temp_dir().join(format!("roomcast-cache-{}", crate::private_dir::user_id()))
        }
    }
}

/// Installs what `spec`'s code imports from the runtime's SDK and returns
/// the variables that make it importable (`NODE_PATH` or `PYTHONPATH`);
/// empty when the function needs nothing.
pub async fn provide(
    spec: &FunctionSpec,
    task_root: &Path,
    cache: &Path,
    python: &Path,
) -> Result<BTreeMap<String, String>, RuntimeSdkError> {
    if spec.runtime.starts_with("nodejs") {
        node(spec, task_root, cache).await
    } else if spec.runtime.starts_with("python") {
        boto3(spec, task_root, cache, python).await
    } else {
        Ok(BTreeMap::new())
    }
}

/// The SDK packages the emulator installs from its own lock file (every
/// package of the tree pinned with its integrity hash, `npm ci`), the
/// clients Lambda functions use most.
const NODE_LOCKED_MANIFEST: &str = include_str!("../../runtimes/node/sdk/package.json");
const NODE_LOCK: &str = include_str!("../../runtimes/node/sdk/package-lock.json");
/// boto3 and its tree, each wheel pinned by hash.
const BOTO3_REQUIREMENTS: &str = include_str!("../../runtimes/python/boto3-requirements.txt");

/// The packages the shipped lock installs.
fn locked_packages() -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(NODE_LOCKED_MANIFEST)
        .ok()
        .and_then(|m| {
            m["dependencies"]
                .as_object()
                .map(|d| d.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// A short name for embedded text (FNV-1a), so a new lock installs into a
/// new directory.
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
}

/// Where the Node SDK packages of the emulator's lock are installed in
/// `cache` (named by the lock's content: a new lock installs anew).
pub fn node_sdk_dir(cache: &Path) -> PathBuf {
    cache.join("nodejs").join(format!(
        "aws-sdk-{NODE_SDK_VERSION}-{}",
        fingerprint(NODE_LOCK)
    ))
}

/// Where boto3 is installed in `cache`.
pub fn boto3_dir(cache: &Path) -> PathBuf {
    cache.join("python").join(format!("boto3-{BOTO3_VERSION}"))
}

async fn node(
    spec: &FunctionSpec,
    task_root: &Path,
    cache: &Path,
) -> Result<BTreeMap<String, String>, RuntimeSdkError> {
    let locked_dir = node_sdk_dir(cache);
    let extra_dir = cache
        .join("nodejs")
        .join(format!("aws-sdk-{NODE_SDK_VERSION}"));
    let wanted = imports(task_root, &["js", "mjs", "cjs"], node_packages);
    let locked = locked_packages();
    // A package of the lock counts only when installed from it: a copy in
    // the other directory (resolved at install time) is not the pinned one.
    let present = |p: &String| {
        let dir = if locked.contains(p) {
            &locked_dir
        } else {
            &extra_dir
        };
        bundled(task_root, p)
            || dir
                .join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
    };
    let missing = || -> Vec<String> { wanted.iter().filter(|p| !present(p)).cloned().collect() };
    if !missing().is_empty() {
        crate::private_dir::ensure(&cache.join("nodejs")).map_err(|e| {
            RuntimeSdkError::Install {
                function: spec.logical_id.clone(),
                runtime: spec.runtime.clone(),
                packages: missing().join(" "),
                cache: cache.display().to_string(),
                reason: e.to_string(),
            }
        })?;
    }
    let (from_lock, others): (Vec<String>, Vec<String>) =
        missing().into_iter().partition(|p| locked.contains(p));
    if !from_lock.is_empty() {
        let _lock = lock(spec, &locked_dir).await?;
        if missing().iter().any(|p| locked.contains(p)) {
            install_locked(spec, &locked_dir, &from_lock).await?;
        }
    }
    if !others.is_empty() {
        let _lock = lock(spec, &extra_dir).await?;
        let others: Vec<String> = missing()
            .into_iter()
            .filter(|p| !locked.contains(p))
            .collect();
        if !others.is_empty() {
            tracing::warn!(function = %spec.logical_id, packages = %others.join(" "), "not in the emulator's locked SDK set: installed at the pinned version with install scripts off, its dependencies resolved at install time; bundle it with the function to pin it yourself");
            let specs: Vec<String> = others
                .iter()
                .map(|p| format!("{p}@{NODE_SDK_VERSION}"))
                .collect();
            let mut npm = Command::new("npm");
            npm.arg("install")
                .arg("--prefix")
                .arg(&extra_dir)
                .args([
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--save-exact",
                ])
                .args(&specs);
            install(spec, &extra_dir, &others, npm).await?;
        }
    }
    let paths: Vec<String> = [&locked_dir, &extra_dir]
        .iter()
        .map(|d| d.join("node_modules"))
        .filter(|m| m.is_dir())
        .map(|m| m.display().to_string())
        .collect();
    Ok(if paths.is_empty() {
        BTreeMap::new()
    } else {
        BTreeMap::from([("NODE_PATH".into(), paths.join(":"))])
    })
}

/// `npm ci` of the shipped lock into `dir`: every package of the tree at
/// the version and integrity hash the lock names, install scripts off.
async fn install_locked(
    spec: &FunctionSpec,
    dir: &Path,
    packages: &[String],
) -> Result<(), RuntimeSdkError> {
    tracing::info!(function = %spec.logical_id, packages = %packages.join(" "), cache = %dir.display(), "installing the AWS SDK packages Lambda's Node.js runtime provides, from the emulator's lock (once; kept in the cache)");
    let failed = |reason: String| RuntimeSdkError::Install {
        function: spec.logical_id.clone(),
        runtime: spec.runtime.clone(),
        packages: packages.join(" "),
        cache: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    std::fs::write(dir.join("package.json"), NODE_LOCKED_MANIFEST)
        .map_err(|e| failed(e.to_string()))?;
    std::fs::write(dir.join("package-lock.json"), NODE_LOCK).map_err(|e| failed(e.to_string()))?;
    let mut npm = Command::new("npm");
    npm.arg("ci").arg("--prefix").arg(dir).args([
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]);
    install(spec, dir, packages, npm).await
}

async fn boto3(
    spec: &FunctionSpec,
    task_root: &Path,
    cache: &Path,
    python: &Path,
) -> Result<BTreeMap<String, String>, RuntimeSdkError> {
    let wanted = imports(task_root, &["py"], python_packages);
    if wanted.is_empty() || task_root.join("boto3").is_dir() {
        return Ok(BTreeMap::new());
    }
    let has_own = Command::new(python)
        .args(["-c", "import boto3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if has_own {
        return Ok(BTreeMap::new());
    }
    let dir = boto3_dir(cache);
    let _lock = if dir.join("boto3").is_dir() {
        None
    } else {
        Some(lock(spec, &dir).await?)
    };
    if !dir.join("boto3").is_dir() {
        tracing::info!(function = %spec.logical_id, cache = %dir.display(), "installing boto3, which Lambda's Python runtime provides (once; kept in the cache)");
        // Every wheel of the tree by hash, no source builds, nothing
        // resolved at install time.
        let requirements = beside(&dir, "requirements.txt");
        std::fs::write(&requirements, BOTO3_REQUIREMENTS).map_err(|e| {
            RuntimeSdkError::Install {
                function: spec.logical_id.clone(),
                runtime: spec.runtime.clone(),
                packages: "boto3".into(),
                cache: dir.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        let mut pip = Command::new(python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--no-deps",
            "--require-hashes",
            "--target",
        ])
        .arg(&dir)
        .arg("-r")
        .arg(&requirements);
        install(spec, &dir, &["boto3".into()], pip).await?;
    }
    Ok(BTreeMap::from([(
        "PYTHONPATH".into(),
        dir.display().to_string(),
    )]))
}

/// `dir` with `.suffix` added to its name (not replacing what follows
/// its last dot: these names end in versions).
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Holds `dir`'s install lock (a file lock, so two emulators, or two
/// tests, never install into one directory at once) until dropped.
async fn lock(spec: &FunctionSpec, dir: &Path) -> Result<std::fs::File, RuntimeSdkError> {
    let path = beside(dir, "lock");
    let failed = |reason: String| RuntimeSdkError::Install {
        function: spec.logical_id.clone(),
        runtime: spec.runtime.clone(),
        packages: String::new(),
        cache: dir.display().to_string(),
        reason,
    };
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::File::create(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| failed(format!("lock task: {e}")))?
    .map_err(|e| failed(format!("cannot lock {}: {e}", dir.display())))
}

/// Runs an installer, reporting failure with its last lines.
async fn install(
    spec: &FunctionSpec,
    dir: &Path,
    packages: &[String],
    mut command: Command,
) -> Result<(), RuntimeSdkError> {
    let failed = |reason: String| RuntimeSdkError::Install {
        function: spec.logical_id.clone(),
        runtime: spec.runtime.clone(),
        packages: packages.join(" "),
        cache: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(INSTALL_TIMEOUT, command.output())
        .await
        .map_err(|_| failed(format!("no answer within {} s", INSTALL_TIMEOUT.as_secs())))?
        .map_err(|e| failed(format!("cannot run the installer: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(failed(format!(
        "{} ({})",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        output.status
    )))
}

/// True when the function ships its own copy of `package`: Node looks in
/// `node_modules` of the task root and of every directory above it.
fn bundled(task_root: &Path, package: &str) -> bool {
    task_root.ancestors().any(|d| {
        d.join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
    })
}

/// Packages named by the function's sources (not by its `node_modules`).
fn imports(root: &Path, extensions: &[&str], find: fn(&str) -> Vec<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !matches!(
                    name.as_ref(),
                    "node_modules" | "__pycache__" | ".git" | ".venv"
                ) && !name.ends_with(".dist-info")
                {
                    dirs.push(path);
                }
            } else if extensions.iter().any(|e| name.ends_with(&format!(".{e}")))
                && entry.metadata().is_ok_and(|m| m.len() <= MAX_SOURCE_BYTES)
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                found.extend(find(&text));
            }
        }
    }
    found
}

/// `@aws-sdk/<name>` in quotes: what `import`, `require` and `import()`
/// name.
fn node_packages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        let needle = format!("{quote}@aws-sdk/");
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + needle.len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(format!("@aws-sdk/{name}"));
            }
            rest = after;
        }
    }
    out
}

/// `boto3` or `botocore`, when a line imports either.
fn python_packages(text: &str) -> Vec<String> {
    let imports_sdk = text.lines().any(|line| {
        let line = line.trim_start();
        ["import ", "from "].iter().any(|kw| {
            line.strip_prefix(kw).is_some_and(|rest| {
                let module = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next();
                matches!(module, Some("boto3" | "botocore"))
            })
        })
    });
    if imports_sdk {
        vec!["boto3".into()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
