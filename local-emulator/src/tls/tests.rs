#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::pki_types::{ServerName, UnixTime};
use tokio_rustls::rustls::{self, RootCertStore};

use super::*;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("roomcast-tls-{}", uuid::Uuid::new_v4().simple()))
}

const NAMES: [&str; 3] = [
    "localhost",
    "127.0.0.1",
    "abcdefghij.execute-api.us-east-1.amazonaws.com",
];

fn names() -> Vec<String> {
    NAMES.iter().map(|n| (*n).to_owned()).collect()
}

/// Whether a certificate for `name`, signed with the CA kept in `dir`,
/// verifies against that CA as a TLS client would check it (webpki,
/// which enforces the CA's name constraints).
fn signed_for_verifies(dir: &Path, name: &str) -> bool {
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca-key.pem")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(pem_to_der(&ca_pem).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    verifier
        .verify_server_cert(
            leaf.der(),
            &[],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

#[test]
fn the_ca_is_kept_and_reused() {
    let dir = scratch();
    let first = LocalTls::load_or_create(&dir, &names()).unwrap();
    let ca = std::fs::read_to_string(&first.ca_pem).unwrap();
    let second = LocalTls::load_or_create(&dir, &names()).unwrap();
    assert_eq!(std::fs::read_to_string(&second.ca_pem).unwrap(), ca);
    let bundle = std::fs::read_to_string(&second.bundle_pem).unwrap();
    assert!(bundle.ends_with(&ca), "the bundle ends with the local CA");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the CA key is private: {mode:o}");
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 5280, 4.2.1.10 (Name Constraints): even with its key, the CA
/// vouches for no name beyond the emulator's own.
#[test]
fn the_ca_signs_for_the_emulators_names_only() {
    let dir = scratch();
    LocalTls::load_or_create(&dir, &names()).unwrap();
    for ok in ["localhost", "other-api.execute-api.us-east-1.amazonaws.com"] {
        assert!(signed_for_verifies(&dir, ok), "{ok}");
    }
    for refused in [
        "www.example.com",
        "lambda.us-east-1.amazonaws.com",
        "abc.execute-api.eu-west-1.amazonaws.com",
    ] {
        assert!(!signed_for_verifies(&dir, refused), "{refused}");
    }
    // A template in another region: the CA is made anew and covers both.
    let mut more = names();
    more.push("zyxwvutsrq.execute-api.eu-west-1.amazonaws.com".into());
    let before = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    LocalTls::load_or_create(&dir, &more).unwrap();
    assert_ne!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), before);
    assert!(signed_for_verifies(
        &dir,
        "abc.execute-api.eu-west-1.amazonaws.com"
    ));
    assert!(signed_for_verifies(
        &dir,
        "abc.execute-api.us-east-1.amazonaws.com"
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ca_near_its_end_or_without_constraints_is_made_anew() {
    let dir = scratch();
    LocalTls::load_or_create(&dir, &names()).unwrap();
    let before = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let mut meta: CaMeta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(META)).unwrap()).unwrap();
    meta.not_after = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    std::fs::write(dir.join(META), serde_json::to_string(&meta).unwrap()).unwrap();
    LocalTls::load_or_create(&dir, &names()).unwrap();
    assert_ne!(
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        before,
        "renewed"
    );
    // An older emulator's CA (valid to 4096, unconstrained) is replaced.
    std::fs::remove_file(dir.join(META)).unwrap();
    let before = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    LocalTls::load_or_create(&dir, &names()).unwrap();
    assert_ne!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_ca_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    LocalTls::load_or_create(&dir, &names()).unwrap();
    std::fs::set_permissions(
        dir.join("ca-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = LocalTls::load_or_create(&dir, &names()).unwrap_err();
    assert!(err.to_string().contains("readable by other users"), "{err}");
    // A shared directory is refused before anything in it is read.
    std::fs::set_permissions(
        dir.join("ca-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = LocalTls::load_or_create(&dir, &names()).unwrap_err();
    assert!(err.to_string().contains("writable by other users"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
