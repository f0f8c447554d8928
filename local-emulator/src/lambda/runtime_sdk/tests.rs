use super::*;

/// Without a home, the cache is this user's own directory in the
/// shared temporary directory, never one name for every user (where
/// another user could plant a CA or a runtime first).
#[test]
fn without_a_home_the_cache_is_per_user() {
    let none = |_: &str| None;
    let dir = cache_dir_from(&none);
    assert!(dir.starts_with(std::env::temp_dir()));
    assert_eq!(
        dir.file_name().unwrap().to_string_lossy(),
        format!("roomcast-cache-{}", crate::private_dir::user_id())
    );
    let home = |k: &str| (k == "HOME").then(|| std::ffi::OsString::from("/home/dev"));
    assert_eq!(
        cache_dir_from(&home),
        PathBuf::from("/home/dev/.cache/roomcast")
    );
}

#[test]
fn node_imports_are_found_in_every_form() {
    let text = r#"
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
const { ApiGatewayManagementApiClient } = require("@aws-sdk/client-apigatewaymanagementapi");
const later = await import("@aws-sdk/client-sqs");
const notAnImport = "@aws-sdk/";
"#;
    let mut found = node_packages(text);
    found.sort();
    assert_eq!(
        found,
        vec![
            "@aws-sdk/client-apigatewaymanagementapi",
            "@aws-sdk/client-dynamodb",
            "@aws-sdk/client-sqs",
            "@aws-sdk/lib-dynamodb",
        ]
    );
}

#[test]
fn python_imports_of_boto3_or_botocore_are_found() {
    assert_eq!(python_packages("import os\nimport boto3\n"), vec!["boto3"]);
    assert_eq!(
        python_packages("from botocore.exceptions import ClientError\n"),
        vec!["boto3"]
    );
    assert!(python_packages("import boto3x\n# import boto3 is a comment\n").is_empty());
}

/// Offline (here: a registry that refuses connections), the error
/// names the function, what it imports, the cache, and what to run.
#[tokio::test]
async fn a_failed_install_says_what_to_do() {
    let spec = FunctionSpec {
        logical_id: "ChatFunction".into(),
        binary: String::new(),
        function_name: "ChatFunction".into(),
        runtime: "nodejs20.x".into(),
        handler: "index.handler".into(),
        code_uri: "src/".into(),
        memory_mb: 128,
        reserved_concurrency: None,
        environment: BTreeMap::new(),
        timeout_secs: 3,
        architecture: "x86_64".into(),
        log_group: "/aws/lambda/fixture".into(),
    };
    let dir = std::env::temp_dir().join(format!("roomcast-sdk-{}", uuid::Uuid::new_v4()));
    let mut npm = Command::new("npm");
    npm.arg("install")
        .arg("--prefix")
        .arg(&dir)
        .args([
            "--registry=http://127.0.0.1:9/",
            "--fetch-retries=0",
            "--offline=false",
            "--cache",
        ])
        .arg(dir.join("npm-cache"))
        .arg(format!("@aws-sdk/client-dynamodb@{NODE_SDK_VERSION}"));
    let packages = vec!["@aws-sdk/client-dynamodb".to_owned()];
    let err = install(&spec, &dir, &packages, npm).await.unwrap_err();
    let text = err.to_string();
    for part in [
        "function ChatFunction",
        "@aws-sdk/client-dynamodb",
        "nodejs20.x",
        "roomcast runtimes install",
        &dir.display().to_string(),
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bundled_copy_is_found_in_the_task_root_or_above() {
    let dir = std::env::temp_dir().join(format!("roomcast-sdk-{}", uuid::Uuid::new_v4()));
    let task = dir.join("app").join("fn");
    std::fs::create_dir_all(&task).unwrap();
    assert!(!bundled(&task, "@aws-sdk/client-dynamodb"));
    let pkg = dir.join("app/node_modules/@aws-sdk/client-dynamodb");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("package.json"), "{}").unwrap();
    assert!(bundled(&task, "@aws-sdk/client-dynamodb"));
    std::fs::write(task.join("app.mjs"), "import '@aws-sdk/client-sqs';").unwrap();
    let nested = task.join("node_modules/x");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("i.js"), "require('@aws-sdk/client-s3')").unwrap();
    let found = imports(&task, &["js", "mjs", "cjs"], node_packages);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["@aws-sdk/client-sqs"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
