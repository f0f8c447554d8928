//! Which program runs a function, from its template entry: `provided`
//! runtimes run `CodeUri/bootstrap` when there is one, else the cargo
//! binary named by `BuildProperties.Binary` (built on demand); `python3.x`
//! runs `awslambdaric <Handler>` through the emulator's bootstrap
//! (`runtimes/python/bootstrap.py`); `nodejs*` runs the emulator's own Node
//! runtime (`runtimes/node/runtime.mjs`) with `node`. Checked at start-up, so a missing or
//! non-executable program is an error naming the function, never a hang.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::launch_error::LaunchError;
use super::process::Launch;
use crate::template::FunctionSpec;

/// Where programs come from.
#[derive(Clone, Debug)]
pub(crate) struct Toolchain {
    /// The template's directory: `CodeUri` is relative to it, and cargo
    /// runs there.
    pub(crate) project: PathBuf,
    /// Cargo's target directory (`CARGO_TARGET_DIR`, else `target`).
    pub(crate) target_dir: PathBuf,
    /// Build cargo binaries even when one exists (`--build`).
    pub(crate) rebuild: bool,
    /// The cargo profile: `debug`, `release` or a custom one.
    pub(crate) profile: String,
    /// The Python interpreter with `awslambdaric` installed.
    pub(crate) python: PathBuf,
    /// Where the runtimes' SDKs are installed (`runtime_sdk`).
    pub(crate) cache: PathBuf,
    /// Where the API's execute-api host name leads inside the emulator's
    /// Node.js and Python runtimes; `None` without TLS.
    pub(crate) callback: Option<Callback>,
}

/// The API's `{apiId}.execute-api.{region}.amazonaws.com`, reached on
/// port 443 by code written for AWS, and the emulator's port that serves
/// it here. The emulator's runtimes (never the function's environment)
/// are told, and connect there instead: name resolution alone cannot
/// change the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Callback {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The program, arguments and task root for `spec`.
pub(crate) async fn resolve(spec: &FunctionSpec, tools: &Toolchain) -> Result<Launch, LaunchError> {
    let task_root = tools.project.join(&spec.code_uri);
    // Checked now: a function process runs there, and a missing one would
    // otherwise fail at the first invocation, blaming the interpreter.
    let task_root = task_root
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| LaunchError::CodeUri {
            function: spec.logical_id.clone(),
            path: task_root.display().to_string(),
        })?;
    let mut env = Vec::new();
    let (program, args) = if spec.runtime.starts_with("provided") {
        provided_program(spec, tools, &task_root).await?
    } else if spec.runtime.starts_with("python3") {
        let bootstrap = runtime_file(spec, tools, "python-bootstrap", "py", PYTHON_BOOTSTRAP)?;
        let python = interpreter(spec, &tools.python, "pass --python or install python3")?;
        probe_runtime_client(spec, &python).await?;
        let mut args = vec![bootstrap.display().to_string()];
        args.extend(callback_args(tools.callback.as_ref()));
        args.push(spec.handler.clone());
        (python, args)
    } else if spec.runtime.starts_with("nodejs") {
        let runtime = runtime_file(spec, tools, "node-runtime", "mjs", NODE_RUNTIME)?;
        let node = interpreter(spec, Path::new("node"), "install Node.js 18 or later")?;
        env.extend(super::node_version::check(spec, &node).await);
        let mut args = vec![runtime.display().to_string()];
        args.extend(callback_args(tools.callback.as_ref()));
        (node, args)
    } else {
        return Err(LaunchError::Runtime {
            function: spec.logical_id.clone(),
            runtime: spec.runtime.clone(),
        });
    };
    Ok(Launch {
        program,
        args,
        task_root,
        env,
    })
}

/// The emulator's Node.js runtime: the Runtime API loop.
const NODE_RUNTIME: &str = include_str!("../../runtimes/node/runtime.mjs");
/// The emulator's Python bootstrap: sets up the execute-api host, then
/// runs `awslambdaric` as `python -m awslambdaric` would.
const PYTHON_BOOTSTRAP: &str = include_str!("../../runtimes/python/bootstrap.py");

/// `--execute-api HOST PORT` for the emulator's runtimes.
fn callback_args(callback: Option<&Callback>) -> Vec<String> {
    callback.map_or_else(Vec::new, |c| {
        vec!["--execute-api".into(), c.host.clone(), c.port.to_string()]
    })
}

/// One of the emulator's runtime files, in the cache directory's
/// `runtimes/` (the developer's own: `crate::private_dir`), so that `node`
/// or `python` can run it. Named by content, and its content checked
/// before each use: a file is never trusted because it is there.
fn runtime_file(
    spec: &FunctionSpec,
    tools: &Toolchain,
    name: &str,
    ext: &str,
    source: &str,
) -> Result<PathBuf, LaunchError> {
    let dir = tools.cache.join("runtimes");
    let hash = source.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{name}-{hash:016x}.{ext}"));
    let fail = |problem| LaunchError::Program {
        function: spec.logical_id.clone(),
        path: path.display().to_string(),
        problem,
    };
    crate::private_dir::ensure(&dir).map_err(|_| {
        fail("is in a directory that is not the developer's alone (the emulator's runtime)")
    })?;
    if std::fs::read(&path).is_ok_and(|held| held == source.as_bytes()) {
        return Ok(path);
    }
    // Write then rename: emulators starting at once never see half a file.
    let tmp = dir.join(format!("{name}-{hash:016x}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, source)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|_| fail("could not be written (the emulator's runtime)"))?;
    Ok(path)
}

/// A `bootstrap` in the `CodeUri` (what `sam build` writes, for the
/// template's architecture: run under QEMU when that is not this
/// machine's), else the cargo binary, built here for this machine.
async fn provided_program(
    spec: &FunctionSpec,
    tools: &Toolchain,
    task_root: &Path,
) -> Result<(PathBuf, Vec<String>), LaunchError> {
    let bootstrap = task_root.join("bootstrap");
    if spec.binary.is_empty() || bootstrap.is_file() {
        return super::architecture::runner(spec, executable(spec, bootstrap)?);
    }
    let built = cargo_output(spec, tools);
    if !built.is_file() {
        cargo_build(&[spec], tools).await?;
    }
    Ok((executable(spec, built)?, Vec::new()))
}

/// Where cargo puts `spec`'s binary in the chosen profile (the `dev`
/// profile's output is in `debug/`).
fn cargo_output(spec: &FunctionSpec, tools: &Toolchain) -> PathBuf {
    let dir = match tools.profile.as_str() {
        "dev" => "debug",
        other => other,
    };
    tools.target_dir.join(dir).join(&spec.binary)
}

/// Whether `spec` runs a binary that cargo builds (a `provided` runtime
/// naming `BuildProperties.Binary`, with no `bootstrap` in its `CodeUri`).
fn is_cargo_binary(spec: &FunctionSpec, tools: &Toolchain) -> bool {
    spec.runtime.starts_with("provided")
        && !spec.binary.is_empty()
        && !tools
            .project
            .join(&spec.code_uri)
            .join("bootstrap")
            .is_file()
}

/// Builds, in one cargo invocation, the binaries of those `specs` that
/// cargo builds and that are missing (or all of them with `--build`):
/// cargo compiles the shared crates once and links the binaries in
/// parallel, where one invocation per function would wait on the target
/// directory's lock and link one after another.
///
/// If that build fails, each is built on its own, so that the error names
/// the function it belongs to; returns those errors by logical id.
pub(crate) async fn build_all(
    specs: &[&FunctionSpec],
    tools: &Toolchain,
) -> BTreeMap<String, LaunchError> {
    let due: Vec<&FunctionSpec> = specs
        .iter()
        .copied()
        .filter(|s| is_cargo_binary(s, tools))
        .filter(|s| tools.rebuild || !cargo_output(s, tools).is_file())
        .collect();
    let mut failed = BTreeMap::new();
    if due.is_empty() {
        return failed;
    }
    let Err(e) = cargo_build(&due, tools).await else {
        return failed;
    };
    if let [only] = due[..] {
        failed.insert(only.logical_id.clone(), e);
        return failed;
    }
    tracing::warn!("the build of every function failed; building each on its own to tell which");
    for spec in due {
        if let Err(e) = cargo_build(&[spec], tools).await {
            failed.insert(spec.logical_id.clone(), e);
        }
    }
    failed
}

/// `cargo build --workspace --profile P --bin A --bin B ...`, in the
/// project, into the emulator's target directory. `--workspace` (rather
/// than a package) because a template names binaries, not packages. In a
/// workspace whose root package depends on the others, as Roomcast's does,
/// features then unify exactly as for `cargo build` at the root, so what
/// that built (or `cargo run` with the same profile) is reused, not rebuilt.
pub(crate) async fn cargo_build(
    specs: &[&FunctionSpec],
    tools: &Toolchain,
) -> Result<(), LaunchError> {
    let mut binaries: Vec<&str> = specs.iter().map(|s| s.binary.as_str()).collect();
    binaries.sort_unstable();
    binaries.dedup();
    let functions = specs
        .iter()
        .map(|s| s.logical_id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let bins: String = binaries.iter().map(|b| format!(" --bin {b}")).collect();
    tracing::info!(%functions, binaries = %bins.trim(), profile = %tools.profile, "building with cargo");
    let fail = |reason: String| LaunchError::Build {
        functions: functions.clone(),
        bins: bins.clone(),
        reason,
    };
    let profile = match tools.profile.as_str() {
        "debug" => "dev",
        other => other,
    };
    let mut command = tokio::process::Command::new("cargo");
    command.args(["build", "--workspace", "--profile", profile]);
    for b in &binaries {
        command.args(["--bin", b]);
    }
    let status = command
        .env("CARGO_TARGET_DIR", &tools.target_dir)
        .current_dir(&tools.project)
        .status()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(status.to_string()));
    }
    Ok(())
}

/// The interpreter `program` (a path, or a name looked up on `PATH`),
/// as an absolute path: the function's process runs in its `CodeUri`, so a
/// path relative to where the emulator started would not be found there.
/// Made absolute, not canonical: a virtualenv's `python` is a symlink
/// whose own location is what selects the virtualenv.
fn interpreter(
    spec: &FunctionSpec,
    program: &Path,
    hint: &'static str,
) -> Result<PathBuf, LaunchError> {
    let found = if program.components().count() > 1 {
        Some(std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf()))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
    };
    let Some(path) = found else {
        return Err(LaunchError::Interpreter {
            function: spec.logical_id.clone(),
            program: program.display().to_string(),
            hint,
        });
    };
    executable(spec, path)
}

/// Runs `python -c "import awslambdaric"` once, at start-up: without it
/// every invocation would fail with a bare `ImportError`.
async fn probe_runtime_client(spec: &FunctionSpec, python: &Path) -> Result<(), LaunchError> {
    let fail = |reason: String| LaunchError::RuntimeClient {
        function: spec.logical_id.clone(),
        python: python.display().to_string(),
        reason,
    };
    let probe = tokio::process::Command::new(python)
        .args(["-c", "import awslambdaric"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    // A deadlock detector: an import takes well under a second.
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), probe)
        .await
        .map_err(|_| fail("the probe did not finish in 30 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(fail(
        last.unwrap_or("it exited with an error").trim().to_owned(),
    ))
}

fn executable(spec: &FunctionSpec, path: PathBuf) -> Result<PathBuf, LaunchError> {
    let problem = |problem| LaunchError::Program {
        function: spec.logical_id.clone(),
        path: path.display().to_string(),
        problem,
    };
    let meta = std::fs::metadata(&path).map_err(|_| problem("does not exist"))?;
    if !meta.is_file() {
        return Err(problem("is not a file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(problem("is not executable (chmod +x)"));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime file found in place is never trusted for being there: a
    /// planted one is replaced by the emulator's own before it runs, and
    /// it lives in the developer's own cache, not a shared directory.
    #[test]
    fn a_planted_runtime_is_replaced_by_the_emulators_own() {
        let cache =
            std::env::temp_dir().join(format!("roomcast-shim-{}", uuid::Uuid::new_v4().simple()));
        let tools = Toolchain {
            project: PathBuf::from("."),
            target_dir: PathBuf::from("target"),
            rebuild: false,
            profile: "debug".into(),
            python: "python3".into(),
            cache: cache.clone(),
            callback: None,
        };
        let spec = FunctionSpec {
            logical_id: "F".into(),
            binary: String::new(),
            function_name: "F".into(),
            runtime: "nodejs22.x".into(),
            handler: "index.handler".into(),
            code_uri: ".".into(),
            memory_mb: 128,
            reserved_concurrency: None,
            environment: BTreeMap::new(),
            timeout_secs: 3,
            architecture: "x86_64".into(),
            log_group: "/aws/lambda/F".into(),
        };
        let path = runtime_file(&spec, &tools, "node-runtime", "mjs", NODE_RUNTIME).unwrap();
        assert!(path.starts_with(cache.join("runtimes")), "{path:?}");
        std::fs::write(&path, "process.exit(7) // planted").unwrap();
        let again = runtime_file(&spec, &tools, "node-runtime", "mjs", NODE_RUNTIME).unwrap();
        assert_eq!(std::fs::read_to_string(again).unwrap(), NODE_RUNTIME);
        let _ = std::fs::remove_dir_all(&cache);
    }
}
