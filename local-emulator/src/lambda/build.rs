//! Start-up: every function of the template, built once (in process when
//! a plug-in handles its binary, else as processes behind the Runtime
//! API), cargo binaries compiled in one go, hot reload started.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lambda::FunctionError;
use crate::lambda::invoke::{Function, FunctionEnv, build_function};
use crate::lambda::launch::{Callback, Toolchain};
use crate::lambda::options::LambdaOptions;
use crate::template::{FunctionSpec, Template};

/// Builds each function once, by logical id, on first ask.
pub(crate) struct FunctionBuilder {
    built: HashMap<String, Arc<Function>>,
    pub(crate) env: FunctionEnv,
    /// For pointing the API's execute-api URLs at the emulator.
    template: Template,
    /// The emulator's `http://host:port`.
    base: String,
}

impl FunctionBuilder {
    pub(crate) fn new(template: Template, base: String, env: FunctionEnv) -> Self {
        Self {
            built: HashMap::new(),
            env,
            template,
            base,
        }
    }

    /// Starts hot reload of the process functions built so far.
    pub(crate) fn watch(&self) {
        let watched =
            std::mem::take(&mut *self.env.watched.lock().unwrap_or_else(|p| p.into_inner()));
        tracing::info!(
            functions = watched.len(),
            "watching process functions' code for changes"
        );
        tokio::spawn(crate::lambda::watch::run(
            watched,
            self.env.tools.clone(),
            std::time::Duration::from_millis(500),
        ));
    }

    /// Builds every cargo binary that runs as processes, in one cargo
    /// invocation, before any function starts.
    pub(crate) async fn build_binaries(&mut self) -> Result<(), FunctionError> {
        let specs = self.template.functions()?;
        let processes: Vec<&FunctionSpec> = specs
            .iter()
            .filter(|s| !crate::lambda::invoke::runs_in_process(s, &self.env))
            .collect();
        self.env.failed_builds =
            crate::lambda::launch::build_all(&processes, &self.env.tools).await;
        Ok(())
    }

    /// The function of `spec`, built on first ask.
    pub(crate) async fn get(
        &mut self,
        spec: &FunctionSpec,
    ) -> Result<Arc<Function>, FunctionError> {
        if let Some(f) = self.built.get(&spec.logical_id) {
            return Ok(f.clone());
        }
        let mut spec = spec.clone();
        self.template.localize(&mut spec, &self.base);
        let f = build_function(&spec, &self.env).await?;
        self.built.insert(spec.logical_id.clone(), f.clone());
        Ok(f)
    }

    /// Every function of the template, by logical id and function name. A
    /// function asked for before (a route's) has been built already; another
    /// one that cannot be (an unsupported runtime) is left out with a
    /// warning, and the Invoke API says 404.
    pub(crate) async fn every_function(
        &mut self,
    ) -> Result<HashMap<String, Arc<Function>>, FunctionError> {
        let mut all = HashMap::new();
        for spec in self.template.functions()? {
            match self.get(&spec).await {
                Ok(f) => {
                    all.insert(spec.function_name.clone(), f.clone());
                    all.insert(spec.logical_id.clone(), f);
                }
                Err(e) => {
                    tracing::warn!(function = %spec.logical_id, error = %e, "not on a route and cannot run here; the Invoke API will not find it");
                }
            }
        }
        Ok(all)
    }
}

/// Where process functions' programs come from: cargo's target directory
/// (`CARGO_TARGET_DIR`, else `target` beside the template).
pub(crate) fn toolchain(
    options: &LambdaOptions,
    template: &Path,
    cache: &Path,
    callback: Option<Callback>,
) -> Toolchain {
    let project = template
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root(&project).join("target"), PathBuf::from);
    Toolchain {
        project,
        target_dir,
        rebuild: options.build,
        profile: options.cargo_profile.clone(),
        python: options.python.clone(),
        cache: cache.to_path_buf(),
        callback,
    }
}

/// Where cargo puts a project's `target`: at the root of the workspace the
/// project belongs to (the nearest ancestor whose Cargo.toml has a
/// `[workspace]`), else beside the project's own Cargo.toml, else beside
/// the template. So a template in a sub-folder of a workspace finds the
/// binaries cargo built.
fn workspace_root(project: &Path) -> PathBuf {
    let absolute = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let manifest = |dir: &Path| std::fs::read_to_string(dir.join("Cargo.toml")).ok();
    let mut package = None;
    for dir in absolute.ancestors() {
        if let Some(text) = manifest(dir) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return dir.to_path_buf();
            }
            package.get_or_insert_with(|| dir.to_path_buf());
        }
    }
    package.unwrap_or_else(|| project.to_path_buf())
}
