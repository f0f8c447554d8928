//! The environment a function process starts with: Lambda's reserved
//! variables, the template's `Environment`, the emulator's overrides, and
//! endpoint settings so the AWS SDKs inside reach the emulator and the
//! local store.

use std::collections::BTreeMap;
use std::path::Path;

use crate::template::FunctionSpec;

/// The account id in local ARNs (the same as `AWS::AccountId` in the template).
pub(crate) use crate::template::ACCOUNT;

/// What every function's environment shares.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    /// `AWS_REGION` and `AWS_DEFAULT_REGION`.
    pub(crate) region: String,
    /// The emulator's base URL (`http://127.0.0.1:port`): the endpoint for
    /// Lambda (Invoke API) and API Gateway's Management API.
    pub(crate) emulator_url: String,
    /// The DynamoDB endpoint processes use, when there is one.
    pub(crate) dynamodb_endpoint: Option<String>,
    /// The local CA's certificate and the system bundle with it appended,
    /// when the emulator serves TLS (`crate::tls`).
    pub(crate) trust: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Settings the emulator injects unless the template sets them
    /// (`ROOMCAST_CALLBACK_URL`, the dev secret…).
    pub(crate) injected: BTreeMap<String, String>,
    /// Each function's role credentials, when IAM is checked.
    pub(crate) iam: Option<std::sync::Arc<crate::iam::Iam>>,
    /// The binaries plug-ins provide: their functions are given `injected`
    /// even when they run as processes.
    pub(crate) plugged: std::collections::BTreeSet<String>,
}

/// `arn:aws:lambda:<region>:<account>:function:<name>`.
pub(crate) fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}")
}

/// The whole environment of `spec`'s processes (without
/// `AWS_LAMBDA_RUNTIME_API`, which each instance adds). `host` is the
/// emulator's own environment: it overrides the template's values, as the
/// in-process path does, and lends its AWS credentials and `PATH`.
pub(crate) fn for_function(
    spec: &FunctionSpec,
    task_root: &Path,
    shared: &Shared,
    host: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    // A plug-in's functions (Roomcast's own) get the settings the emulator
    // provides; a team's own function gets Lambda's reserved variables and
    // its own template variables, nothing of ours (not the dev signing
    // secret).
    let ours = shared.plugged.contains(&spec.binary);
    let mut env = if ours {
        shared.injected.clone()
    } else {
        BTreeMap::new()
    };
    for (k, v) in &spec.environment {
        let value = host(k).unwrap_or_else(|| v.clone());
        if !value.is_empty() || !env.contains_key(k) {
            env.insert(k.clone(), value);
        }
    }
    if let Some(endpoint) = &shared.dynamodb_endpoint {
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint.clone());
        if ours {
            env.insert("ROOMCAST_DYNAMODB_ENDPOINT".into(), endpoint.clone());
        }
    }
    // The SDKs' service-specific endpoint settings ("Identifiers for
    // service-specific endpoints": EventBridge's is EVENTBRIDGE).
    for service in ["LAMBDA", "EVENTBRIDGE"] {
        env.insert(
            format!("AWS_ENDPOINT_URL_{service}"),
            shared.emulator_url.clone(),
        );
    }
    credentials(spec, shared, host, &mut env);
    let passed: &[&str] = if ours {
        &["PATH", "LANG", "RUST_LOG", "RUST_BACKTRACE"]
    } else {
        &["PATH", "LANG"]
    };
    for k in passed {
        if let Some(v) = host(k) {
            env.insert((*k).into(), v);
        }
    }
    if spec.runtime.starts_with("python") {
        // No __pycache__ in the user's code: its timestamps have a
        // one-second grain, so a file edited twice within a second would
        // otherwise be served stale after a hot reload.
        env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    }
    if let Some((ca, bundle)) = &shared.trust {
        // The trust store each runtime reads, so that the emulator's TLS is
        // trusted: Node adds NODE_EXTRA_CA_CERTS to its roots; the others
        // replace their roots, so they get the system's with the CA added.
        // (Rust's rustls-native-certs reads SSL_CERT_FILE too.)
        env.insert("NODE_EXTRA_CA_CERTS".into(), ca.display().to_string());
        for k in ["AWS_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
            env.insert(k.into(), bundle.display().to_string());
        }
    }
    reserved(spec, task_root, shared, &mut env);
    env
}

/// The function's credentials: its role's session, as Lambda gives them
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
/// when IAM is checked; else the emulator's own (or `local`).
fn credentials(
    spec: &FunctionSpec,
    shared: &Shared,
    host: &dyn Fn(&str) -> Option<String>,
    env: &mut BTreeMap<String, String>,
) {
    if let Some(c) = shared
        .iam
        .as_ref()
        .and_then(|i| i.credentials(&spec.logical_id))
    {
        env.insert("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key.clone());
        env.insert("AWS_SESSION_TOKEN".into(), c.session_token.clone());
        return;
    }
    let fallback = [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ];
    for (k, default) in fallback {
        env.insert(k.into(), host(k).unwrap_or_else(|| default.into()));
    }
    if let Some(token) = host("AWS_SESSION_TOKEN") {
        env.insert("AWS_SESSION_TOKEN".into(), token);
    }
}

/// Lambda's reserved variables: they win over anything else, as in Lambda.
fn reserved(
    spec: &FunctionSpec,
    task_root: &Path,
    shared: &Shared,
    env: &mut BTreeMap<String, String>,
) {
    let name = &spec.function_name;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let day = crate::timefmt::date_slashed(now_ms);
    let pairs = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group.clone()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("{day}/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", shared.region.clone()),
        ("AWS_DEFAULT_REGION", shared.region.clone()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", spec.runtime)),
        ("_HANDLER", spec.handler.clone()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", task_root.display().to_string()),
        ("TZ", ":UTC".into()),
    ];
    for (k, v) in pairs {
        env.insert(k.into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            logical_id: "VoteFunction".into(),
            binary: String::new(),
            function_name: "vote".into(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            code_uri: "fn/".into(),
            memory_mb: 256,
            reserved_concurrency: None,
            environment: BTreeMap::from([
                ("A".into(), "from-template".into()),
                ("B".into(), "from-template".into()),
            ]),
            timeout_secs: 3,
            architecture: "x86_64".into(),
            log_group: "/aws/lambda/fixture".into(),
        }
    }

    #[test]
    fn reserved_variables_win_and_the_host_overrides_the_template() {
        let shared = Shared {
            region: "eu-west-1".into(),
            emulator_url: "http://127.0.0.1:1".into(),
            dynamodb_endpoint: Some("http://127.0.0.1:2".into()),
            trust: None,
            injected: BTreeMap::from([("_HANDLER".into(), "sneaky".into())]),
            iam: None,
            plugged: Default::default(),
        };
        let host = |k: &str| (k == "B").then(|| "from-host".to_owned());
        let env = for_function(&spec(), Path::new("/code"), &shared, &host);
        assert_eq!(env["A"], "from-template");
        assert_eq!(env["B"], "from-host");
        assert_eq!(env["_HANDLER"], "app.handler");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "vote");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/fixture");
        assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"].contains("/[$LATEST]"));
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
        assert_eq!(env["LAMBDA_TASK_ROOT"], "/code");
        assert_eq!(env["TZ"], ":UTC");
        assert_eq!(env["AWS_ENDPOINT_URL_DYNAMODB"], "http://127.0.0.1:2");
        assert_eq!(env["AWS_ENDPOINT_URL_LAMBDA"], "http://127.0.0.1:1");
        assert_eq!(env["AWS_ENDPOINT_URL_EVENTBRIDGE"], "http://127.0.0.1:1");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "local");
        assert!(!env.contains_key("AWS_LAMBDA_RUNTIME_API"), "per instance");
        assert_eq!(
            env["PYTHONDONTWRITEBYTECODE"], "1",
            "no stale bytecode after a reload"
        );
    }

    /// AWS, "Defined runtime environment variables": a function's
    /// environment is Lambda's reserved variables plus the ones its
    /// configuration sets. A team's function in the same template as
    /// Roomcast's must not see Roomcast's settings (among them the
    /// development signing secret); Roomcast's own functions still get them.
    #[test]
    fn a_teams_function_gets_nothing_of_roomcasts() {
        let shared = Shared {
            region: "us-east-1".into(),
            emulator_url: "http://127.0.0.1:1".into(),
            dynamodb_endpoint: Some("http://127.0.0.1:2".into()),
            trust: None,
            iam: None,
            injected: BTreeMap::from([
                ("ROOMCAST_JWT_SECRET".into(), "dev-secret".into()),
                (
                    "ROOMCAST_CALLBACK_URL".into(),
                    "http://127.0.0.1:1/prod".into(),
                ),
            ]),
            plugged: ["message".to_owned()].into(),
        };
        let host = |k: &str| match k {
            "PATH" => Some("/usr/bin".to_owned()),
            "RUST_LOG" => Some("debug".to_owned()),
            _ => None,
        };
        let theirs = for_function(&spec(), Path::new("/code"), &shared, &host);
        let leaked: Vec<&String> = theirs
            .keys()
            .filter(|k| k.starts_with("ROOMCAST_") || k.starts_with("RUST_"))
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
        assert_eq!(theirs["A"], "from-template");
        assert_eq!(theirs["PATH"], "/usr/bin");
        let mut roomcast = spec();
        roomcast.binary = "message".into();
        let ours = for_function(&roomcast, Path::new("/code"), &shared, &host);
        assert_eq!(ours["ROOMCAST_JWT_SECRET"], "dev-secret");
        assert_eq!(ours["ROOMCAST_DYNAMODB_ENDPOINT"], "http://127.0.0.1:2");
        assert_eq!(ours["RUST_LOG"], "debug");
    }

    #[test]
    fn arns_are_well_formed() {
        assert_eq!(
            function_arn("us-east-1", "vote"),
            "arn:aws:lambda:us-east-1:000000000000:function:vote"
        );
    }
}
