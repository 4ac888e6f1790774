//! Offline revocation: the certificates the hub-signed roster names as revoked, and the
//! certificate each listed node must present, checked inside the TLS handshake by wrapped
//! rustls verifiers — with no CRL or OCSP server to reach.
//!
//! ```text
//!   roster applied ──► CertPolicy::set (shared, swapped under a lock)
//!                           │
//!          ┌────────────────┴─────────────────┐
//!   PolicyClientVerifier (listener)    PolicyServerVerifier (client)
//!   WebPki chain check, then the policy: a revoked fingerprint, or a node whose
//!   roster entry pins another certificate, fails the handshake
//! ```
//!
//! A session resumed from before the revocation skips certificate verification; the listener
//! therefore also checks the connection's certificate on every request
//! (`federation::server`), so a resumed or kept-alive connection is refused as well.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::Digest as _;

/// SHA-256 of a certificate's DER bytes, lower-case hex: how the roster names a certificate.
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    crate::crypto::to_hex(&sha2::Sha256::digest(der))
}

/// Why the policy refuses a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRefusal {
    /// Its fingerprint is on the roster's revoked list.
    Revoked {
        /// The fingerprint.
        fingerprint: String,
    },
    /// The roster pins another certificate for the node it names.
    NotTheNodesCertificate {
        /// The node the certificate names.
        node: String,
    },
}

impl std::fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Revoked { fingerprint } => {
                write!(f, "certificate {fingerprint} is revoked by the roster")
            }
            Self::NotTheNodesCertificate { node } => {
                write!(f, "certificate is not the one the roster names for {node}")
            }
        }
    }
}

#[derive(Debug, Default)]
struct Rules {
    revoked: HashSet<String>,
    pinned: HashMap<String, String>,
}

/// The revoked certificates and the certificate pinned per node, shared by the listener's and
/// the client's verifiers and replaced whole when a roster is applied (cheap to clone).
/// Handshakes it refuses are counted in `lapor_federation_tls_refused_total{side, reason}`.
#[derive(Debug, Clone, Default)]
pub struct CertPolicy(
    Arc<RwLock<Rules>>,
    Arc<std::sync::OnceLock<Arc<crate::metrics::Metrics>>>,
);

impl CertPolicy {
    /// Counts refused handshakes into `metrics` (the first call wins).
    pub fn count_into(&self, metrics: Arc<crate::metrics::Metrics>) {
        for side in ["listener", "client"] {
            for reason in ["certificate_revoked", "node_certificate_mismatch"] {
                metrics.inc(
                    "lapor_federation_tls_refused_total",
                    &[("side", side), ("reason", reason)],
                    0,
                );
            }
        }
        let _ = self.1.set(metrics);
    }

    /// Replaces the rules: `revoked` fingerprints, and `pinned` (node id → fingerprint).
    pub fn set(&self, revoked: HashSet<String>, pinned: HashMap<String, String>) {
        let mut r = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *r = Rules { revoked, pinned };
    }

    /// Whether the certificate `der` may be used: not revoked, and the one pinned for the node
    /// it names (when the roster pins one).
    pub fn check(&self, der: &[u8]) -> Result<(), PolicyRefusal> {
        let r = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.revoked.is_empty() && r.pinned.is_empty() {
            return Ok(());
        }
        let fp = fingerprint(der);
        if r.revoked.contains(&fp) {
            return Err(PolicyRefusal::Revoked { fingerprint: fp });
        }
        if let Some(node) = super::identity::node_of_der(der) {
            if let Some(want) = r.pinned.get(node.as_str()) {
                if *want != fp {
                    return Err(PolicyRefusal::NotTheNodesCertificate {
                        node: node.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the fingerprint `fp` is revoked.
    #[must_use]
    pub fn is_revoked(&self, fp: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .revoked
            .contains(fp)
    }

    fn refuse(&self, der: &[u8], side: &'static str) -> Result<(), rustls::Error> {
        self.check(der).map_err(|r| {
            let code = match r {
                PolicyRefusal::Revoked { .. } => "certificate_revoked",
                PolicyRefusal::NotTheNodesCertificate { .. } => "node_certificate_mismatch",
            };
            if let Some(m) = self.1.get() {
                m.inc(
                    "lapor_federation_tls_refused_total",
                    &[("side", side), ("reason", code)],
                    1,
                );
            }
            tracing::warn!(side, reason = code, message = %r, "TLS handshake refused by the roster");
            rustls::Error::InvalidCertificate(match r {
                PolicyRefusal::Revoked { .. } => CertificateError::Revoked,
                PolicyRefusal::NotTheNodesCertificate { .. } => {
                    CertificateError::ApplicationVerificationFailure
                }
            })
        })
    }
}

/// The listener's client-certificate verifier: the CA's chain check, then the policy.
#[derive(Debug)]
pub struct PolicyClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    policy: CertPolicy,
}

impl PolicyClientVerifier {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn ClientCertVerifier>, policy: CertPolicy) -> Self {
        Self { inner, policy }
    }
}

impl ClientCertVerifier for PolicyClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.policy.refuse(end_entity.as_ref(), "listener")?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client's server-certificate verifier: the CA's chain and name check, then the policy.
#[derive(Debug)]
pub struct PolicyServerVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    policy: CertPolicy,
}

impl PolicyServerVerifier {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn ServerCertVerifier>, policy: CertPolicy) -> Self {
        Self { inner, policy }
    }
}

impl ServerCertVerifier for PolicyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.policy.refuse(end_entity.as_ref(), "client")?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
