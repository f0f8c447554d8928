//! Why a function cannot be made ready at start-up (`FunctionError`), and
//! why one cannot run as a process (`LaunchError`).

use super::runtime_sdk::RuntimeSdkError;

/// Why a function cannot be run as a process. Each says what to fix.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// `cargo build` failed or could not run. Fix the build (cargo's output
    /// is above this line in the log) and start again.
    #[error("function {functions}: `cargo build --workspace{bins}` failed: {reason}")]
    Build {
        /// The logical ids of the functions the build was for.
        functions: String,
        /// ` --bin NAME` for each binary.
        bins: String,
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
    /// The `bootstrap` is built for another architecture than the
    /// template's `Architectures`: Lambda would fail to start it. Build it
    /// for the architecture the template names, or change `Architectures`.
    #[error(
        "function {function}: {path} is built for {built_for}, but its Architectures is {architecture}: Lambda could not start it"
    )]
    Architecture {
        /// The logical id.
        function: String,
        /// The program's path.
        path: String,
        /// The machine it is built for, as Lambda names it.
        built_for: &'static str,
        /// The template's `Architectures`.
        architecture: String,
    },
    /// The `bootstrap` is built for another machine than this one, and the
    /// emulator to run it is not installed: install what `hint` says.
    #[error(
        "function {function}: its bootstrap is built for {built_for}, not this machine; {hint}"
    )]
    Emulator {
        /// The logical id.
        function: String,
        /// The machine it is built for, as Lambda names it.
        built_for: &'static str,
        /// What to install.
        hint: String,
    },
    /// The function's `CodeUri` is not a directory: fix the path (it is
    /// relative to the template's directory) or build the code there.
    #[error(
        "function {function}: its CodeUri {path} is not a directory (CodeUri is relative to the template's directory)"
    )]
    CodeUri {
        /// The logical id.
        function: String,
        /// The path looked for.
        path: String,
    },
    /// The Python interpreter cannot import Lambda's runtime interface
    /// client: install it into that interpreter, or pass another.
    #[error(
        "function {function}: {python} cannot import awslambdaric ({reason}); install it with `{python} -m pip install awslambdaric`, or pass --python with one that has it"
    )]
    RuntimeClient {
        /// The logical id.
        function: String,
        /// The interpreter.
        python: String,
        /// What the probe saw.
        reason: String,
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

/// Why a function of the template cannot be made ready at start-up. Each
/// variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The template's entry for it is wrong.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// A function meant to run in process names a binary no plug-in
    /// handles. Fix `Metadata.BuildProperties.Binary` in the template.
    #[error("function {function} has Binary {binary:?}, which has no handler; known: {known}")]
    UnknownFunction {
        /// The function's logical id.
        function: String,
        /// Its binary name.
        binary: String,
        /// The binaries that exist.
        known: String,
    },
    /// A function could not initialise with its environment.
    #[error("function {function} failed to initialise: {reason}")]
    FunctionInit {
        /// The function's logical id.
        function: String,
        /// Why.
        reason: String,
    },
    /// A function cannot run as a process (unsupported runtime, a program
    /// missing or not executable, a failed build): fix what it names.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The AWS SDK a function imports, which Lambda's runtime would
    /// provide, could not be installed: the error says how to install it.
    #[error(transparent)]
    RuntimeSdk(#[from] RuntimeSdkError),
}
