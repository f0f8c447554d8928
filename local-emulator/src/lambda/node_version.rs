//! The installed `node` against the function's `nodejs<N>.x` runtime:
//! Lambda runs Node N, this machine may have another. Said once at
//! start-up, in one line, rather than found out from a behaviour that
//! differs.

use std::path::Path;
use std::time::Duration;

use crate::template::FunctionSpec;

/// The AWS SDK for JavaScript v3 warns, in seven lines at every cold
/// start, when Node is older than it wants. Lambda's own Node for the
/// runtime is never that old, so the warning is the emulator's artefact
/// and is turned off when the installed Node is older than the runtime's.
const SDK_WARNING_OFF: &str = "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED";

/// Warns when `node` is older (or newer) than `spec`'s runtime, and gives
/// the variables its runtime should add.
pub(crate) async fn check(spec: &FunctionSpec, node: &Path) -> Vec<(String, String)> {
    let Some(wanted) = runtime_major(&spec.runtime) else {
        return Vec::new();
    };
    let Some(installed) = installed_major(node).await else {
        tracing::warn!(function = %spec.logical_id, node = %node.display(), "could not read `node --version`");
        return Vec::new();
    };
    if installed == wanted {
        return Vec::new();
    }
    tracing::warn!(
        function = %spec.logical_id,
        runtime = %spec.runtime,
        installed = %format!("v{installed}"),
        "this function runs on the installed Node {installed}, Lambda runs Node {wanted}: install Node {wanted} to run what Lambda runs"
    );
    if installed < wanted {
        vec![(SDK_WARNING_OFF.to_owned(), "true".to_owned())]
    } else {
        Vec::new()
    }
}

/// `nodejs22.x` → 22.
fn runtime_major(runtime: &str) -> Option<u32> {
    runtime
        .strip_prefix("nodejs")?
        .strip_suffix(".x")?
        .parse()
        .ok()
}

/// `v20.11.1` → 20.
fn major_of(version: &str) -> Option<u32> {
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

async fn installed_major(node: &Path) -> Option<u32> {
    let probe = tokio::process::Command::new(node)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    // A deadlock detector: `node --version` answers at once.
    let output = tokio::time::timeout(Duration::from_secs(30), probe)
        .await
        .ok()?
        .ok()?;
    major_of(&String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_lambda_and_node_write_them() {
        assert_eq!(runtime_major("nodejs22.x"), Some(22));
        assert_eq!(runtime_major("nodejs18.x"), Some(18));
        assert_eq!(runtime_major("python3.12"), None);
        assert_eq!(major_of("v20.20.2\n"), Some(20));
        assert_eq!(major_of("20.1"), None);
    }
}
