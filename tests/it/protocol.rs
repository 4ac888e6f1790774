//! Protocol hardening, from what an independent verifier written from `docs/PROTOCOL.md`
//! alone found: public keys no signature check should ever meet.

use ed25519_dalek::VerifyingKey;
use lapor_node::crypto::keys::KeyId;
use lapor_node::domain::NodeId;

const ORIGIN: &str = "prov-53.lapor.test";

/// A small-order key is refused wherever a public key is read: pinning a peer's keys (first
/// contact, and an operator's `peers pin`), and the keyring from the database (a row written
/// before this check existed).
#[test]
fn unsafe_public_keys_are_neither_pinned_nor_loaded() {
    use base64::Engine as _;
    use lapor_node::delivery::peers;
    use lapor_node::delivery::wire::KeyInfo;
    use lapor_node::event_log::keys::{KeyRow, KeysError};
    let db = crate::helpers::sqlite();
    let s = crate::helpers::settings(&db, "");
    let database = lapor_node::app::open_database(&s).unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    let info = KeyInfo {
        id: KeyId::of(&weak).to_string(),
        public_key: base64::engine::general_purpose::STANDARD.encode(identity),
        valid_from_ms: 0,
        valid_until_ms: None,
    };
    let peer = NodeId::parse(ORIGIN).unwrap();
    let refused = |r: Result<String, String>| {
        let m = r.unwrap_err();
        assert!(m.contains("malformed"), "{m}");
    };
    refused(
        peers::pin_keys(&database, &peer, std::slice::from_ref(&info))
            .map(|n| n.to_string())
            .map_err(|e| e.to_string()),
    );
    refused(
        peers::pin_by_operator(&database, &peer, &info)
            .map(|n| n.to_string())
            .map_err(|e| e.to_string()),
    );
    let row = KeyRow {
        key_id: info.id.clone(),
        origin: ORIGIN.into(),
        public_key: info.public_key.clone(),
        valid_from_ms: 0,
        valid_until_ms: None,
    };
    database
        .write(move |c| {
            Ok::<(), lapor_node::db::DbError>(lapor_node::event_log::keys::register(c, &row)?)
        })
        .unwrap();
    let mut c = database.read().unwrap();
    match lapor_node::event_log::keys::keyring(&mut c) {
        Err(KeysError::Stored(id)) => assert_eq!(id, info.id),
        other => panic!("{other:?}"),
    }
}
