//! Which program runs a function, from its template entry: `provided`
//! runtimes run `CodeUri/bootstrap` when there is one, else the cargo
//! binary named by `BuildProperties.Binary` (built on demand); `python3.x`
//! runs `python -m awslambdaric <Handler>`; `nodejs*` runs the emulator's
//! own Node runtime (`runtimes/node/runtime.mjs`) with `node`. Checked at start-up, so a missing or
//! non-executable program is an error naming the function, never a hang.

use std::path::{Path, PathBuf};

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
}

/// Why a function cannot be run as a process. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The runtime is not one the emulator can start.
    #[error(
        "function {function}: Runtime {runtime} is not supported; use provided.al2023, provided.al2, python3.x or nodejs*"
    )]
    Runtime {
        /// The logical id.
        function: String,
        /// The template's `Runtime`.
        runtime: String,
    },
    /// `cargo build` failed or could not run.
    #[error("function {function}: `cargo build --workspace --bin {binary}` failed: {reason}")]
    Build {
        /// The logical id.
        function: String,
        /// The binary.
        binary: String,
        /// What happened.
        reason: String,
    },
    /// The runtime's interpreter is not installed.
    #[error("function {function}: {program} not found on PATH ({hint})")]
    Interpreter {
        /// The logical id.
        function: String,
        /// The interpreter.
        program: String,
        /// What to do.
        hint: &'static str,
    },
    /// The program is missing or not executable.
    #[error("function {function}: {path} {problem}")]
    Program {
        /// The logical id.
        function: String,
        /// The program's path.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The program, arguments and task root for `spec`.
pub(crate) async fn resolve(spec: &FunctionSpec, tools: &Toolchain) -> Result<Launch, LaunchError> {
    let task_root = tools.project.join(&spec.code_uri);
    let task_root = task_root.canonicalize().unwrap_or(task_root);
    let (program, args) = if spec.runtime.starts_with("provided") {
        (provided_program(spec, tools, &task_root).await?, Vec::new())
    } else if spec.runtime.starts_with("python3") {
        let args = ["-m", "awslambdaric", spec.handler.as_str()];
        let python = interpreter(spec, &tools.python, "pass --python or install python3")?;
        (python, args.map(str::to_owned).to_vec())
    } else if spec.runtime.starts_with("nodejs") {
        let runtime = node_runtime(spec)?;
        let node = interpreter(spec, Path::new("node"), "install Node.js 18 or later")?;
        (node, vec![runtime.display().to_string()])
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
    })
}

/// The emulator's Node runtime (`runtimes/node/runtime.mjs`), written once
/// to the temporary directory so `node` can run it.
fn node_runtime(spec: &FunctionSpec) -> Result<PathBuf, LaunchError> {
    const SOURCE: &str = include_str!("../../runtimes/node/runtime.mjs");
    let dir = std::env::temp_dir().join("roomcast-runtimes");
    // Named by content, so an upgraded emulator never runs a stale copy.
    let hash = SOURCE.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("node-runtime-{hash:016x}.mjs"));
    if !path.is_file() {
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            // Write then rename: emulators starting at once never see half a file.
            let tmp = dir.join(format!(
                "node-runtime-{hash:016x}.{}.tmp",
                std::process::id()
            ));
            std::fs::write(&tmp, SOURCE)?;
            std::fs::rename(&tmp, &path)
        });
        written.map_err(|_| LaunchError::Program {
            function: spec.logical_id.clone(),
            path: path.display().to_string(),
            problem: "could not be written (the Node runtime)",
        })?;
    }
    Ok(path)
}

async fn provided_program(
    spec: &FunctionSpec,
    tools: &Toolchain,
    task_root: &Path,
) -> Result<PathBuf, LaunchError> {
    let bootstrap = task_root.join("bootstrap");
    if spec.binary.is_empty() || bootstrap.is_file() {
        return executable(spec, bootstrap);
    }
    // Cargo puts the `dev` profile's output in `debug/`.
    let dir = if tools.profile == "dev" {
        "debug"
    } else {
        tools.profile.as_str()
    };
    let built = tools.target_dir.join(dir).join(&spec.binary);
    if tools.rebuild || !built.is_file() {
        cargo_build(spec, tools).await?;
    }
    executable(spec, built)
}

pub(crate) async fn cargo_build(spec: &FunctionSpec, tools: &Toolchain) -> Result<(), LaunchError> {
    tracing::info!(function = %spec.logical_id, binary = %spec.binary, "building with cargo");
    let fail = |reason: String| LaunchError::Build {
        function: spec.logical_id.clone(),
        binary: spec.binary.clone(),
        reason,
    };
    let profile = match tools.profile.as_str() {
        "debug" => "dev",
        other => other,
    };
    let status = tokio::process::Command::new("cargo")
        .args([
            "build",
            "--workspace",
            "--profile",
            profile,
            "--bin",
            &spec.binary,
        ])
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

/// The interpreter `program` (a path, or a name looked up on `PATH`).
fn interpreter(
    spec: &FunctionSpec,
    program: &Path,
    hint: &'static str,
) -> Result<PathBuf, LaunchError> {
    let found = if program.components().count() > 1 {
        Some(program.to_path_buf())
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
