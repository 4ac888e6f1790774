//! rustls configurations: the federation listener (client certificate required, issued by the
//! federation CA) and the HTTP client peers are called with (this node's certificate, trusting
//! only the federation CA).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::TlsError;
use super::revocation::{CertPolicy, PolicyClientVerifier, PolicyServerVerifier};

/// The three files of a node's federation identity.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Federation CA certificate (trust anchor).
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

fn pem_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no certificate found"));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    check_key_mode(path)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_err(path, e))
}

/// Refuses a private key file whose mode grants any access to group or others (like the
/// signing key): the certificate's key is what proves this node to the federation.
fn check_key_mode(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|cause| TlsError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(path)? {
        roots.add(c).map_err(|e| pem_err(path, e))?;
    }
    Ok(roots)
}

/// The federation listener's configuration: requires a client certificate from the CA.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    server_config_with(files, &CertPolicy::default())
}

/// [`server_config`], refusing in the handshake the client certificates `policy` refuses
/// (revoked by the roster, or not the one it names for the node).
pub fn server_config_with(
    files: &TlsFiles,
    policy: &CertPolicy,
) -> Result<rustls::ServerConfig, TlsError> {
    super::install_crypto_provider();
    let webpki = WebPkiClientVerifier::builder(Arc::new(roots(&files.ca)?))
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = Arc::new(PolicyClientVerifier::new(webpki, policy.clone()));
    let mut cfg = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// An HTTP client presenting this node's certificate and trusting only the federation CA.
/// `resolve` pins node names to addresses (loopback tests, a proxy, or hosts without DNS).
pub fn client(
    files: &TlsFiles,
    resolve: &[(String, SocketAddr)],
    timeout: Duration,
) -> Result<reqwest::Client, TlsError> {
    super::install_crypto_provider();
    let ca_pem = std::fs::read(&files.ca).map_err(|cause| TlsError::Io {
        path: files.ca.display().to_string(),
        cause,
    })?;
    let ca = reqwest::Certificate::from_pem(&ca_pem).map_err(|e| pem_err(&files.ca, e))?;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|cause| TlsError::Io {
            path: p.display().to_string(),
            cause,
        })
    };
    let mut identity_pem = read(&files.cert)?;
    identity_pem.push(b'\n');
    check_key_mode(&files.key)?;
    identity_pem.extend(read(&files.key)?);
    let identity =
        reqwest::Identity::from_pem(&identity_pem).map_err(|e| pem_err(&files.cert, e))?;
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(identity)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout);
    for (host, addr) in resolve {
        b = b.resolve(host, *addr);
    }
    b.build().map_err(|e| TlsError::Client(e.to_string()))
}

/// Node names pinned to addresses, changeable while the client runs (peers the roster adds);
/// other names go to the system resolver.
#[derive(Debug, Default)]
pub struct Resolver(std::sync::RwLock<std::collections::HashMap<String, SocketAddr>>);

impl Resolver {
    /// Pins `host` to `addr`.
    pub fn pin(&self, host: &str, addr: SocketAddr) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_owned(), addr);
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let pinned = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name.as_str())
            .copied();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Some(a) = pinned {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(a));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The federation client: this node's certificate, trusting only the federation CA, refusing
/// in the handshake the server certificates `policy` refuses, names resolved by `resolver`.
pub fn client_with(
    files: &TlsFiles,
    resolver: Arc<Resolver>,
    timeout: Duration,
    policy: &CertPolicy,
) -> Result<reqwest::Client, TlsError> {
    super::install_crypto_provider();
    let webpki = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots(&files.ca)?))
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = Arc::new(PolicyServerVerifier::new(webpki, policy.clone()));
    let mut cfg = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certs(&files.cert)?, key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .dns_resolver(resolver)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}
