//! The federation CA and node certificates (`lapor-node certs ca|issue`), made with rcgen.
//!
//! A CA directory holds `ca.pem` and `ca.key`; a node directory holds `node.pem` (the node
//! certificate), `node.key` and a copy of the CA certificate `ca.pem` (the trust anchor for
//! peers). Private keys are written with mode 0600 and never overwritten.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::TlsError;
use crate::domain::NodeId;

/// File names inside a CA directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key.
pub const CA_KEY: &str = "ca.key";
/// A node's certificate.
pub const NODE_CERT: &str = "node.pem";
/// A node's private key.
pub const NODE_KEY: &str = "node.key";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |cause| TlsError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// Writes `text` to a new file with `mode`; refuses to overwrite.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|cause| {
            let cause = if cause.kind() == ErrorKind::AlreadyExists {
                std::io::Error::new(ErrorKind::AlreadyExists, "already exists; not overwritten")
            } else {
                cause
            };
            TlsError::Io {
                path: path.display().to_string(),
                cause,
            }
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// What `certs ca` made.
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// `ca.pem`.
    pub cert: PathBuf,
    /// `ca.key` (0600).
    pub key: PathBuf,
}

/// Creates a federation CA in `out` (created if missing), valid for `days` days.
pub fn create_ca(out: &Path, name: &str, days: i64) -> Result<CaFiles, TlsError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "LAPOR! federation");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let files = CaFiles {
        cert: out.join(CA_CERT),
        key: out.join(CA_KEY),
    };
    write_new(&files.key, &key.serialize_pem(), 0o600)?;
    write_new(&files.cert, &cert.pem(), 0o644)?;
    Ok(files)
}

/// What `certs issue` made.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// `node.pem`.
    pub cert: PathBuf,
    /// `node.key` (0600).
    pub key: PathBuf,
    /// `ca.pem`, the federation CA certificate (trust anchor).
    pub ca: PathBuf,
}

/// Validity of an issued certificate.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago for `days` days.
    #[must_use]
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

/// The CA of `ca_dir` as an issuer, and its certificate (PEM) with its path.
fn load_issuer(ca_dir: &Path) -> Result<(Issuer<'static, KeyPair>, String, PathBuf), TlsError> {
    let ca_cert_path = ca_dir.join(CA_CERT);
    let ca_key_path = ca_dir.join(CA_KEY);
    let ca_pem = read(&ca_cert_path)?;
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| TlsError::Pem {
        path: ca_key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| TlsError::Pem {
        path: ca_cert_path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((issuer, ca_pem, ca_cert_path))
}

/// The node certificate profile: DNS SAN and CN = node id, EKU serverAuth + clientAuth, key
/// usage digitalSignature + keyEncipherment.
fn node_params(node: &NodeId, validity: Validity) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(vec![node.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node.as_str());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    Ok(params)
}

/// Writes `cert` and, unless it is the CA's own file, a copy of the CA certificate into `out`.
fn write_cert(
    out: &Path,
    cert: &str,
    ca_pem: &str,
    ca_cert_path: &Path,
) -> Result<(PathBuf, PathBuf), TlsError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let (cert_path, ca_copy) = (out.join(NODE_CERT), out.join(CA_CERT));
    write_new(&cert_path, cert, 0o644)?;
    if ca_copy != ca_cert_path {
        write_new(&ca_copy, ca_pem, 0o644)?;
    }
    Ok((cert_path, ca_copy))
}

/// Issues a node certificate (DNS SAN = node id; EKU serverAuth + clientAuth) signed by the CA
/// in `ca_dir`, into `out`, with a new key (development; production uses [`request`] on the
/// node and [`issue_for_request`] at the CA).
pub fn issue(
    ca_dir: &Path,
    node: &NodeId,
    out: &Path,
    validity: Validity,
) -> Result<NodeFiles, TlsError> {
    let (issuer, ca_pem, ca_cert_path) = load_issuer(ca_dir)?;
    let key = KeyPair::generate()?;
    let cert = node_params(node, validity)?.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let key_path = out.join(NODE_KEY);
    write_new(&key_path, &key.serialize_pem(), 0o600)?;
    let (cert, ca) = write_cert(out, &cert.pem(), &ca_pem, &ca_cert_path)?;
    Ok(NodeFiles {
        cert,
        key: key_path,
        ca,
    })
}

/// A certificate signing request's name inside a node directory.
pub const NODE_CSR: &str = "node.csr";

/// What `certs csr` made.
#[derive(Debug, Clone)]
pub struct RequestFiles {
    /// `node.key` (0600): stays on the node.
    pub key: PathBuf,
    /// `node.csr`: goes to the CA.
    pub csr: PathBuf,
}

/// On the node: a new TLS key (`node.key`, 0600) and a certificate signing request for it
/// (`node.csr`, PEM, DNS SAN = CN = node id) in `out`. The key never leaves the node.
pub fn request(node: &NodeId, out: &Path) -> Result<RequestFiles, TlsError> {
    crate::crypto::keys::private_dir(out).map_err(io(out))?;
    let mut params = CertificateParams::new(vec![node.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node.as_str());
    params.distinguished_name = dn;
    let key = KeyPair::generate()?;
    let csr = params.serialize_request(&key)?;
    let files = RequestFiles {
        key: out.join(NODE_KEY),
        csr: out.join(NODE_CSR),
    };
    write_new(&files.key, &key.serialize_pem(), 0o600)?;
    write_new(&files.csr, &csr.pem()?, 0o644)?;
    Ok(files)
}

/// At the CA: signs the request in `csr_path` without seeing its key. The request's signature
/// must verify and it must name exactly one DNS name, a valid node id (and `node` when given);
/// everything else in the certificate comes from the federation's profile, not the request.
/// Writes `node.pem` and a copy of `ca.pem` into `out`; returns the node id and the files.
pub fn issue_for_request(
    ca_dir: &Path,
    csr_path: &Path,
    node: Option<&NodeId>,
    out: &Path,
    validity: Validity,
) -> Result<(NodeId, PathBuf, PathBuf), TlsError> {
    let bad = |message: String| TlsError::Pem {
        path: csr_path.display().to_string(),
        message,
    };
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(&read(csr_path)?)
        .map_err(|e| bad(format!("not a valid certificate signing request: {e}")))?;
    let names: Vec<String> = csr
        .params
        .subject_alt_names
        .iter()
        .map(|s| match s {
            rcgen::SanType::DnsName(n) => Ok(n.as_str().to_owned()),
            other => Err(bad(format!(
                "requests a subject alternative name other than a DNS name: {other:?}"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let [name] = names.as_slice() else {
        return Err(bad(format!(
            "must request exactly one DNS name (the node id); it requests {names:?}"
        )));
    };
    let requested =
        NodeId::parse(name).map_err(|e| bad(format!("requests {name:?}, not a node id: {e}")))?;
    if let Some(n) = node {
        if n != &requested {
            return Err(bad(format!("requests {requested}, not {n}")));
        }
    }
    let (issuer, ca_pem, ca_cert_path) = load_issuer(ca_dir)?;
    csr.params = node_params(&requested, validity)?;
    let cert = csr.signed_by(&issuer)?;
    let (cert, ca) = write_cert(out, &cert.pem(), &ca_pem, &ca_cert_path)?;
    Ok((requested, cert, ca))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ca_and_node_certificates_with_private_keys_0600() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca(&dir.path().join("ca"), "test CA", 30).unwrap();
        let node = NodeId::parse("prov-31.lapor.test").unwrap();
        let files = issue(
            &dir.path().join("ca"),
            &node,
            &dir.path().join("n31"),
            Validity::days(30),
        )
        .unwrap();
        for key in [&ca.key, &files.key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        let pem = std::fs::read(&files.cert).unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let id = crate::tls::identity::dns_san(&cert).unwrap();
        assert_eq!(id, "prov-31.lapor.test");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        // Never overwritten.
        let again = create_ca(&dir.path().join("ca"), "test CA", 30);
        assert!(again.unwrap_err().to_string().contains("already exists"));
    }
}
