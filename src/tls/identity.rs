//! The peer's node id, taken from its verified client certificate when a federation
//! connection is accepted, and stored in the connection's extensions for the handlers.

use std::any::Any;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::domain::NodeId;

/// The node at the other end of a verified mTLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub NodeId);

/// The SHA-256 fingerprint of the certificate the peer presented (checked against the roster's
/// revocations on every request, so a resumed or kept-alive connection is refused too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub String);

/// The first DNS name of a certificate's subject alternative names.
#[must_use]
pub fn dns_san(cert: &X509Certificate<'_>) -> Option<String> {
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|n| match n {
        GeneralName::DNSName(d) => Some((*d).to_owned()),
        _ => None,
    })
}

/// The node id named by a DER certificate.
#[must_use]
pub fn node_of_der(der: &[u8]) -> Option<NodeId> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    NodeId::parse(&dns_san(&cert)?).ok()
}

/// `HttpServer::on_connect` hook: sets `TCP_NODELAY`; on a rustls connection whose client presented a verified
/// certificate, records the peer's node id (from the first certificate, the peer's own).
/// Anything else records nothing, and the federation routes then refuse the request.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    // Without TCP_NODELAY each request on a fresh TLS 1.3 connection waits for a delayed ACK
    // (Nagle): tens of milliseconds per request.
    if let Err(e) = tls.get_ref().0.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY on a federation connection");
    }
    let Some(first) = tls.get_ref().1.peer_certificates().and_then(<[_]>::first) else {
        return;
    };
    match node_of_der(first.as_ref()) {
        Some(node) => {
            // A resumed session skips the certificates and a round trip: what a flapping
            // link's reconnections cost (ARCHITECTURE decision 61).
            let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            tracing::debug!(peer = %node, resumed, "federation connection");
            ext.insert(PeerIdentity(node));
            ext.insert(PeerCertificate(super::revocation::fingerprint(
                first.as_ref(),
            )));
        }
        None => tracing::warn!("federation client certificate names no valid node id"),
    }
}
