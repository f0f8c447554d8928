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
//!
//! Whatever trusts the CA trusts every certificate its key signs, so the
//! CA is made to sign little (docs/security.md): its key is readable by
//! the developer only (a key others can read is refused), in a directory
//! only the developer can write; it carries name constraints (RFC 5280,
//! 4.2.1.10: the names and addresses the emulator serves, `localhost`,
//! loopback, the region's execute-api hosts, the bound address) so that
//! even its key could not vouch for another site; and it is valid for two
//! years, made anew when 30 days are left or when it must cover a name its
//! constraints do not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
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

/// How long a new CA is valid.
const CA_VALIDITY: time::Duration = time::Duration::days(730);
/// A CA with less left than this is made anew.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

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
        crate::private_dir::ensure(dir).map_err(|e| bad(e.to_string()))?;
        let (ca_pem, ca_key) = ca(dir, names).map_err(|e| bad(e.to_string()))?;
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
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(397);
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

/// The CA's certificate and key (PEM): the one kept, if its key is
/// private, it covers `names` and it is not near its end; else a new one.
fn ca(dir: &Path, names: &[String]) -> Result<(String, String), Box<dyn std::error::Error>> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    let read = || -> Result<Option<(String, String)>, Box<dyn std::error::Error>> {
        let (Ok(cert), Ok(meta)) = (
            std::fs::read_to_string(&cert_path),
            std::fs::symlink_metadata(&key_path),
        ) else {
            return Ok(None);
        };
        if !meta.file_type().is_file() || !crate::private_dir::private_file(&meta) {
            return Err(format!(
                "{} is readable by other users: delete {} (a new CA is made) or chmod 600 it",
                key_path.display(),
                dir.display()
            )
            .into());
        }
        let key = std::fs::read_to_string(&key_path)?;
        Ok(still_good(dir, names).then_some((cert, key)))
    };
    if let Some(pair) = read()? {
        return Ok(pair);
    }
    // Emulators (or tests) starting at once must agree on one CA: the
    // first to take the lock makes it, the others then read it.
    let lock = std::fs::File::create(dir.join("ca.lock"))?;
    lock.lock()?;
    if let Some(pair) = read()? {
        return Ok(pair);
    }
    let kept = kept_meta(dir);
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
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + CA_VALIDITY;
    // What the old CA covered stays covered: a second template (another
    // region) does not take the first one's names away.
    let mut permitted = kept_meta(dir).map(|m| m.permitted).unwrap_or_default();
    for subtree in subtrees(names) {
        if !permitted.contains(&subtree) {
            permitted.push(subtree);
        }
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted.iter().filter_map(|s| general(s)).collect(),
        excluded_subtrees: Vec::new(),
    });
    let cert = params.self_signed(&key)?;
    // The key first, readable by its owner only: a CA key that others can
    // read lets them impersonate the emulator to whatever trusts this CA.
    replace_private(&key_path, &key.serialize_pem())?;
    write_if_changed(&cert_path, &cert.pem())?;
    let meta = CaMeta {
        not_after: params.not_after.unix_timestamp(),
        permitted,
    };
    write_if_changed(&dir.join(META), &serde_json::to_string(&meta)?)?;
    tracing::info!(ca = %cert_path.display(), renewed = kept.is_some(), "made a local certificate authority for the emulator's TLS (valid two years, constrained to the emulator's names)");
    Ok((cert.pem(), key.serialize_pem()))
}

/// Beside the CA (in the developer's own directory): when it ends and
/// what its name constraints permit, as `dns:NAME` and `ip:ADDR/PREFIX`.
const META: &str = "ca.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct CaMeta {
    not_after: i64,
    permitted: Vec<String>,
}

fn kept_meta(dir: &Path) -> Option<CaMeta> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(META)).ok()?).ok()
}

/// The subtrees that permit `names`: each execute-api host's region
/// (any API id there), other names themselves; loopback's whole range,
/// and each other address alone.
fn subtrees(names: &[String]) -> Vec<String> {
    let mut out = vec![
        "dns:localhost".to_owned(),
        "ip:127.0.0.0/8".to_owned(),
        "ip:::1/128".to_owned(),
    ];
    for name in names {
        let subtree = match name.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_loopback() => continue,
            Ok(ip @ std::net::IpAddr::V4(_)) => format!("ip:{ip}/32"),
            Ok(ip @ std::net::IpAddr::V6(_)) => format!("ip:{ip}/128"),
            Err(_) => match name.split_once(".execute-api.") {
                Some((_, region)) => format!("dns:execute-api.{region}"),
                None => format!("dns:{name}"),
            },
        };
        if !out.contains(&subtree) {
            out.push(subtree);
        }
    }
    out
}

/// One subtree spelled as `subtrees` spells it.
fn general(spec: &str) -> Option<GeneralSubtree> {
    if let Some(name) = spec.strip_prefix("dns:") {
        return Some(GeneralSubtree::DnsName(name.to_owned()));
    }
    let (addr, prefix) = spec.strip_prefix("ip:")?.rsplit_once('/')?;
    Some(GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
        addr.parse().ok()?,
        prefix.parse().ok()?,
    )))
}

/// Whether the kept CA may go on: constrained, covering `names`, and with
/// more than `RENEW_BEFORE` left.
fn still_good(dir: &Path, names: &[String]) -> bool {
    let Some(meta) = kept_meta(dir) else {
        return false;
    };
    let left = meta.not_after - time::OffsetDateTime::now_utc().unix_timestamp();
    left > RENEW_BEFORE.whole_seconds()
        && subtrees(names).iter().all(|s| meta.permitted.contains(s))
}

/// Replaces `path` with a new file readable by its owner only.
fn replace_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

use crate::private_dir::write_private;

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
mod tests;
