//! Protocol hardening, from what an independent verifier written from `docs/PROTOCOL.md`
//! alone found: public keys no signature check should ever meet, signatures that batch
//! verification would take and strict verification refuses, unsigned members riding in `sig`,
//! integers beyond what RFC 8785 writes exactly.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::Identity as _;
use curve25519_dalek::{EdwardsPoint, Scalar};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use lapor_node::crypto::keys::{self, KeyError, KeyId, NodeKey, UnsafeKey};
use lapor_node::crypto::signing::{self, Keyring, PublicKey, VerifyError};
use lapor_node::crypto::strict_json::StrictJsonError;
use lapor_node::domain::{EventId, NodeId, Timestamp};
use lapor_node::event_log::wire::{self, WireError};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

const ORIGIN: &str = "prov-53.lapor.test";

/// A `postponed` event of `ORIGIN` at `seq`, without `id` and `sig`.
fn unsigned(seq: u64) -> Value {
    json!({
        "origin": ORIGIN, "seq": seq, "prev": "ab".repeat(32),
        "ticket": "019ac9a0-0000-7000-8000-000000000002", "parents": [], "kind": "postponed",
        "at": "2026-11-27T02:00:00.000Z",
        "body": {"actor": {"role": "verifier", "officer": "verif.ntt"}, "note": format!("menunggu {seq}")},
        "pii": null,
    })
}

/// The event with its id and this signature by `key_id`.
fn with_sig(mut v: Value, key_id: &KeyId, sig: &[u8; 64]) -> Value {
    use base64::Engine as _;
    let id = signing::id_of(&v).unwrap();
    v["id"] = Value::String(id.to_string());
    v["sig"] = json!({"key": key_id.as_str(), "value": base64::engine::general_purpose::STANDARD.encode(sig)});
    v
}

/// What an event's signature covers.
fn message(v: &Value) -> Vec<u8> {
    signing::message(&wire::canonical_bytes(v).unwrap())
}

/// Ed25519's challenge `H(R ‖ A ‖ M)`.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A nonce from a counter (deterministic tests).
fn nonce(i: u64) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&Sha512::digest(i.to_be_bytes()).into())
}

/// What a signer holding `key` makes with the nonce `r` when it adds `torsion` to its `R`:
/// `R = [r]B + torsion`, `s = r + H(R ‖ A ‖ M)·a`.
fn sign_with(key: &SigningKey, r: Scalar, torsion: EdwardsPoint, m: &[u8]) -> [u8; 64] {
    let big_r = (EdwardsPoint::mul_base(&r) + torsion).compress();
    let h = challenge(big_r.as_bytes(), key.verifying_key().as_bytes(), m);
    let s = r + h * key.to_scalar();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn ring_entry(key: VerifyingKey) -> PublicKey {
    PublicKey {
        origin: NodeId::parse(ORIGIN).unwrap(),
        key,
        valid_from: Timestamp::from_millis(0),
        valid_until: None,
    }
}

/// The point of order 2, `(0, −1)`.
fn order_2() -> EdwardsPoint {
    let mut y = [0xff; 32];
    y[0] = 0xec;
    y[31] = 0x7f;
    CompressedEdwardsY(y).decompress().unwrap()
}

/// A batch of events must be judged exactly as each event alone with strict verification.
/// `ed25519_dalek::verify_batch` takes three kinds of signatures `verify_strict` refuses —
/// shown here on the very messages — and `verify_many` refuses all three.
#[test]
fn a_batch_accepts_exactly_what_strict_verification_accepts() {
    let secret = SigningKey::from_bytes(&[7u8; 32]);
    let real = NodeKey::from_signing_key(secret.clone());
    let good = unsigned(1);
    let good_m = message(&good);
    let good_sig = real.sign(&good_m);
    let good = with_sig(good, real.id(), &good_sig.to_bytes());

    // 1. The identity as a public key: `s = r` with `R = [r]B` "verifies" any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(matches!(
        keys::public_key_from_bytes(&identity),
        Err(KeyError::Unsafe(UnsafeKey::SmallOrder))
    ));
    let weak_event = unsigned(2);
    let m1 = message(&weak_event);
    let r = nonce(1);
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(EdwardsPoint::mul_base(&r).compress().as_bytes());
    forged[32..].copy_from_slice(r.as_bytes());
    let weak_event = with_sig(weak_event, &KeyId::of(&weak), &forged);

    // 2. A small-order R (the identity) with the real key: `s = H(R ‖ A ‖ M)·a`.
    let small_r = unsigned(3);
    let m2 = message(&small_r);
    let small_r_sig = sign_with(&secret, Scalar::ZERO, EdwardsPoint::identity(), &m2);
    let small_r = with_sig(small_r, real.id(), &small_r_sig);

    // 3. An R with a torsion component (`[r]B` plus the point of order 2): the batch takes it
    // when its random coefficient is even, which the signer can grind for.
    let torsioned_event = unsigned(4);
    let m4 = message(&torsioned_event);
    let (torsioned_sig, tries) = (0..64u64)
        .map(|i| (sign_with(&secret, nonce(100 + i), order_2(), &m4), i))
        .find(|(sig, _)| {
            ed25519_dalek::verify_batch(
                &[&good_m, &m4],
                &[good_sig, Signature::from_bytes(sig)],
                &[real.verifying_key(), real.verifying_key()],
            )
            .is_ok()
        })
        .expect("a batch-accepted torsioned R within 64 tries");
    assert!(tries < 64);
    let torsioned = with_sig(torsioned_event, real.id(), &torsioned_sig);

    let mut ring = Keyring::new();
    ring.insert(real.id().clone(), ring_entry(real.verifying_key()));
    // Put there by hand: nothing that reads keys (pinning, the database) lets it in.
    ring.insert(KeyId::of(&weak), ring_entry(weak));

    let cases = [
        (&weak_event, m1.as_slice(), forged, weak),
        (&small_r, m2.as_slice(), small_r_sig, real.verifying_key()),
        (
            &torsioned,
            m4.as_slice(),
            torsioned_sig,
            real.verifying_key(),
        ),
    ];
    for (event, msg, sig, key) in cases {
        let sig = Signature::from_bytes(&sig);
        // What a batch verifier would do with it next to a good signature, and strictly.
        assert!(
            ed25519_dalek::verify_batch(
                &[&good_m, msg],
                &[good_sig, sig],
                &[real.verifying_key(), key]
            )
            .is_ok(),
            "{event}"
        );
        assert!(key.verify_strict(msg, &sig).is_err());
        // What this node does: refused alone and in a batch, naming the event.
        assert!(
            matches!(
                signing::verify_value(event, &ring),
                Err(VerifyError::BadSignature(_))
            ),
            "{event}"
        );
        let (at, e) = signing::verify_many(&[good.clone(), event.clone()], &ring).unwrap_err();
        assert_eq!(at, 1);
        assert!(matches!(e, VerifyError::BadSignature(_)), "{e:?}");
    }
    // The good event alone, and twice (one check for one signature), verifies.
    assert_eq!(
        signing::verify_many(&[good.clone(), good], &ring)
            .unwrap()
            .len(),
        2
    );
}

/// `sig` carries nothing no signature covers: any member but `key`, `value` and `group` (and
/// in `group` any but `index`, `size`, `path`) is refused with its own reason, and a path of
/// the wrong length for its place has one too.
#[test]
fn unsigned_members_in_sig_and_a_path_that_does_not_fit_are_refused_with_their_reasons() {
    let key = NodeKey::from_signing_key(SigningKey::from_bytes(&[7u8; 32]));
    let mut ring = Keyring::new();
    ring.insert(key.id().clone(), ring_entry(key.verifying_key()));
    let mut events: Vec<Value> = (1..=3)
        .map(|seq| {
            let mut v = unsigned(seq);
            v["id"] = Value::String(signing::id_of(&v).unwrap().to_string());
            v
        })
        .collect();
    let ids: Vec<EventId> = events
        .iter()
        .map(|v| serde_json::from_value(v["id"].clone()).unwrap())
        .collect();
    for (v, sig) in events
        .iter_mut()
        .zip(signing::sign_group(&ids, &key).unwrap())
    {
        v["sig"] = sig.to_value();
    }
    assert_eq!(signing::verify_many(&events, &ring).unwrap().len(), 3);
    let refused = |f: &dyn Fn(&mut Value)| {
        let mut v = events[0].clone();
        f(&mut v);
        signing::verify(v.to_string().as_bytes(), &ring).unwrap_err()
    };
    let e = refused(&|v| v["sig"]["note"] = json!("dibayar"));
    assert_eq!(e, VerifyError::UnknownSigMember("sig.note".into()));
    assert_eq!(
        e.to_string(),
        "`sig.note` is not a member of a signature; nothing unsigned may ride along with an event"
    );
    let e = refused(&|v| v["sig"]["group"]["depth"] = json!(2));
    assert_eq!(e, VerifyError::UnknownSigMember("sig.group.depth".into()));
    // A signature alone may not carry a `null` group either.
    let mut alone = unsigned(9);
    let canonical = wire::canonical_bytes(&alone).unwrap();
    alone["id"] = Value::String(signing::id_of(&alone).unwrap().to_string());
    alone["sig"] = signing::sign(&canonical, &key).to_value();
    signing::verify_value(&alone, &ring).unwrap();
    alone["sig"]["extra"] = Value::Null;
    assert_eq!(
        signing::verify_value(&alone, &ring).unwrap_err(),
        VerifyError::UnknownSigMember("sig.extra".into())
    );
    // Index 0 of 3 needs a path of 2 hashes.
    let e = refused(&|v| {
        v["sig"]["group"]["path"].as_array_mut().unwrap().pop();
    });
    assert_eq!(e, VerifyError::GroupPathMismatch);
    let e = refused(&|v| {
        let p = v["sig"]["group"]["path"][0].clone();
        v["sig"]["group"]["path"].as_array_mut().unwrap().push(p);
    });
    assert_eq!(e, VerifyError::GroupPathMismatch);
}

/// Integers are refused beyond ±(2^53 − 1): past it RFC 8785 writes the double nearest the
/// number, so a writer that prints the digits and one that canonicalises give two ids.
#[test]
fn integers_beyond_plus_minus_2_pow_53_minus_1_are_refused() {
    // The reason: 2^53 + 1 is written as 2^53 by the canonicaliser.
    assert_eq!(
        serde_json_canonicalizer::to_string(&json!(9_007_199_254_740_993_u64)).unwrap(),
        "9007199254740992"
    );
    let key = NodeKey::from_signing_key(SigningKey::from_bytes(&[7u8; 32]));
    let mut ring = Keyring::new();
    ring.insert(key.id().clone(), ring_entry(key.verifying_key()));
    let event_with = |n: Value| {
        let mut v = unsigned(1);
        // A member a newer node might add: covered by the signature like any other.
        v["body"]["count"] = n;
        let canonical = wire::canonical_bytes(&v).unwrap();
        v["id"] = Value::String(signing::id_of(&v).unwrap().to_string());
        v["sig"] = signing::sign(&canonical, &key).to_value();
        v
    };
    for n in [
        json!(9_007_199_254_740_991_i64),
        json!(-9_007_199_254_740_991_i64),
    ] {
        let v = event_with(n);
        signing::verify(v.to_string().as_bytes(), &ring).unwrap();
        signing::verify_value(&v, &ring).unwrap();
    }
    for n in [
        json!(9_007_199_254_740_992_i64),
        json!(-9_007_199_254_740_992_i64),
        json!(u64::MAX),
    ] {
        let v = event_with(n.clone());
        // As received bytes: the strict reader refuses the number.
        let e = signing::verify(v.to_string().as_bytes(), &ring).unwrap_err();
        assert_eq!(
            e,
            VerifyError::Json(StrictJsonError::IntegerOutOfRange {
                text: n.to_string(),
                path: "$.body.count".into(),
            })
        );
        // As a value built some other way: the verifier refuses it too.
        let e = signing::verify_value(&v, &ring).unwrap_err();
        assert_eq!(
            e,
            VerifyError::Wire(WireError::IntegerOutOfRange {
                path: "$.body.count".into(),
                text: n.to_string(),
            })
        );
    }
}

/// A small-order key is refused wherever a public key is read: pinning a peer's keys (first
/// contact, and an operator's `peers pin`), and the keyring from the database (a row written
/// before this check existed).
#[test]
fn unsafe_public_keys_are_neither_pinned_nor_loaded() {
    use base64::Engine as _;
    use lapor_node::event_log::keys::{KeyRow, KeysError};
    use lapor_node::federation::peers;
    use lapor_node::federation::protocol::KeyInfo;
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
