//! TLS on the emulator's port, so that a callback written as AWS's
//! documentation writes it (`https://{domainName}/{stage}`, or the API's
//! `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`) works
//! unmodified. The same port serves plain HTTP and TLS: the server tells
//! them apart by the first byte (a TLS record starts with 0x16, an HTTP
//! request with a letter).
//!
//! The certificate comes from a local certificate authority that the
//! emulator creates once and keeps in its cache directory, so that what
//! trusts it keeps trusting it across runs. Process functions are given it
//! through the variables their runtimes read (`lambda::environment`); a
//! browser or another tool can be pointed at `ca.pem` by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Where Linux distributions and macOS keep the system's trusted roots:
/// the bundle given to runtimes starts with the first that exists, so
/// that replacing the runtime's trust store (`SSL_CERT_FILE`) keeps every
/// public root and only adds the local one.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Why TLS could not be set up. The emulator says which file, and that
/// removing the directory makes it start over.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file of the local CA could not be read or written.
    #[error("local CA file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate or key could not be made or read; delete the `tls`
    /// directory of the cache to make a new CA.
    #[error("local CA in {dir}: {reason}")]
    Certificate {
        /// The directory.
        dir: String,
        /// What failed.
        reason: String,
    },
}

/// The emulator's TLS: the acceptor, and the files clients trust.
#[derive(Clone)]
pub struct LocalTls {
    pub(crate) acceptor: TlsAcceptor,
    /// The local CA's certificate (PEM): what to trust.
    pub ca_pem: PathBuf,
    /// The system's roots plus the local CA (PEM), for trust-store
    /// variables that replace rather than add.
    pub bundle_pem: PathBuf,
}

impl std::fmt::Debug for LocalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTls")
            .field("ca_pem", &self.ca_pem)
            .field("bundle_pem", &self.bundle_pem)
            .finish_non_exhaustive()
    }
}

impl LocalTls {
    /// Loads the CA kept in `dir` (or creates it) and issues a server
    /// certificate for `names` (host names and IP addresses).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        let bad = |reason: String| TlsError::Certificate {
            dir: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (ca_pem, ca_key) = ca(dir).map_err(|e| bad(e.to_string()))?;
        let ca_key = KeyPair::from_pem(&ca_key).map_err(|e| bad(e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| bad(e.to_string()))?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| bad(e.to_string()))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Roomcast local emulator");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| bad(e.to_string()))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| bad(e.to_string()))?;
        let ca_der =
            pem_to_der(&ca_pem).ok_or_else(|| bad("ca.pem holds no certificate".into()))?;
        let chain = vec![cert.der().clone(), ca_der];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| bad(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let ca_path = dir.join("ca.pem");
        let bundle_path = dir.join("bundle.pem");
        let mut bundle = SYSTEM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&ca_pem);
        write_if_changed(&bundle_path, &bundle).map_err(io(&bundle_path))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca_path,
            bundle_pem: bundle_path,
        })
    }
}

/// The CA's certificate and key (PEM), created on first use.
fn ca(dir: &Path) -> Result<(String, String), Box<dyn std::error::Error>> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    let read = || {
        Some((
            std::fs::read_to_string(&cert_path).ok()?,
            std::fs::read_to_string(&key_path).ok()?,
        ))
    };
    if let Some(pair) = read() {
        return Ok(pair);
    }
    // Emulators (or tests) starting at once must agree on one CA: the
    // first to take the lock creates it, the others then read it.
    let lock = std::fs::File::create(dir.join("ca.lock"))?;
    lock.lock()?;
    if let Some(pair) = read() {
        return Ok(pair);
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Roomcast local development CA");
    name.push(
        DnType::OrganizationName,
        "Roomcast emulator (not for production)",
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    // The key first, readable by its owner only: a CA key that others can
    // read lets them impersonate any host to whatever trusts this CA.
    write_private(&key_path, &key.serialize_pem())?;
    write_if_changed(&cert_path, &cert.pem())?;
    tracing::info!(ca = %cert_path.display(), "created a local certificate authority for the emulator's TLS");
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    // Written aside and renamed, so a runtime starting meanwhile never
    // reads half a bundle.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The first certificate of a PEM text, as DER.
fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    use base64::Engine as _;
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .map(CertificateDer::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_reused() {
        let dir = std::env::temp_dir().join(format!("roomcast-tls-{}", uuid::Uuid::new_v4()));
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = LocalTls::load_or_create(&dir, &names).unwrap();
        let ca = std::fs::read_to_string(&first.ca_pem).unwrap();
        let second = LocalTls::load_or_create(&dir, &names).unwrap();
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
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
