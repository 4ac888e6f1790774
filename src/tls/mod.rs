//! Transport security of the federation: the federation CA and node certificates
//! ([`certs`]), rustls server and client configurations ([`config`]), and the peer's node id
//! read from its verified client certificate ([`identity`]), and the roster's revocations and
//! pinned certificates checked in every handshake ([`revocation`]).
//!
//! Transport identity is the certificate (invariant 7): a node's certificate carries its node
//! id as DNS SAN and serves as both server and client certificate. Per-event authorisation is
//! checked against the event's signer, never the transport peer, so relayed copies are safe.

pub mod certs;
pub mod config;
pub mod identity;
pub mod revocation;

pub use identity::PeerIdentity;

/// A TLS set-up failure, naming the file or step.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The IO error.
        cause: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The private key file grants access to group or others.
    #[error(
        "{path}: private key readable by others (mode {mode:04o}); \
         restrict it with `chmod 600 {path}` (owned by the node's user)"
    )]
    KeyPermissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
}

/// Installs the process-wide rustls crypto provider (ring) once; later calls do nothing.
pub fn install_crypto_provider() {
    // An `Err` only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
