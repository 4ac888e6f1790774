//! Golden events: signed by a fixed test key (`[7u8; 32]`), kept under `tests/fixtures/events/`
//! and compared byte for byte, so any change of the wire format shows in review. Regenerate
//! deliberately with `UPDATE_FIXTURES=1 cargo test fixtures`.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use lapor_node::crypto::keys::{NodeKey, public_key_text};
use lapor_node::crypto::signing::{self, Keyring, PublicKey};
use lapor_node::domain::event::{Actor, Change, Created, Role};
use lapor_node::domain::{
    AgencyCode, Category, Channel, Event, EventId, NodeId, Privacy, RegionCode, ReportKind,
    TicketId, Timestamp, TrackingCode,
};
use lapor_node::event_log::wire;

fn fixture_key() -> NodeKey {
    NodeKey::from_signing_key(SigningKey::from_bytes(&[7u8; 32]))
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Signs an event as the log does and returns it with its canonical bytes and JSON text.
fn signed(mut e: Event, key: &NodeKey) -> (Event, String, String) {
    let unsigned = wire::unsigned_value(&e).unwrap();
    let canonical = wire::canonical_bytes(&unsigned).unwrap();
    e.id = EventId::of_bytes(&canonical);
    let mut v = unsigned;
    v["id"] = serde_json::Value::String(e.id.to_string());
    v["sig"] = signing::sign(&canonical, key).to_value();
    (
        e,
        String::from_utf8(canonical).unwrap(),
        serde_json::to_string_pretty(&v).unwrap() + "\n",
    )
}

fn fixtures() -> Vec<(&'static str, Event, String, String)> {
    let key = fixture_key();
    let node = NodeId::parse("prov-53.lapor.test").unwrap();
    let ticket = TicketId::parse("019ac9a0-0000-7000-8000-000000000001").unwrap();
    let base = |seq: u64,
                prev: Option<EventId>,
                parents: Vec<EventId>,
                at: &str,
                actor: Actor,
                change: Change| Event {
        id: EventId::of_bytes(b""),
        origin: node.clone(),
        seq,
        prev,
        ticket,
        parents,
        at: ts(at),
        actor,
        change,
        pii: None,
    };
    let created = Change::Created(Box::new(Created {
        tracking_code: TrackingCode::parse("53-K7QX-9F2M").unwrap(),
        report_kind: ReportKind::Pengaduan,
        title: "Puskesmas tutup di jam layanan".into(),
        text: "Puskesmas di Kupang tutup pukul 10.00 padahal jadwal buka sampai 14.00.".into(),
        category: Category::parse("kesehatan").unwrap(),
        region: RegionCode::parse("5371").unwrap(),
        suggested_agency: Some(AgencyCode::parse("KEMENKES").unwrap()),
        channel: Channel::Sms,
        privacy: Privacy {
            anonymous: true,
            confidential: false,
        },
        verify_due: ts("2026-12-02T16:00:00.000Z"),
        overall_due: ts("2027-01-27T16:00:00.000Z"),
    }));
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("verif.ntt".into()),
        agency: None,
    };
    let (e1, c1, j1) = signed(
        base(
            1,
            None,
            vec![],
            "2026-11-27T01:02:03.004Z",
            Actor::citizen(),
            created,
        ),
        &key,
    );
    let (e2, c2, j2) = signed(
        base(
            2,
            Some(e1.id.clone()),
            vec![e1.id.clone()],
            "2026-11-27T02:00:00.000Z",
            verifier.clone(),
            Change::Verified {},
        ),
        &key,
    );
    let dispatched = Change::Dispatched {
        agency: AgencyCode::parse("KEMENKES").unwrap(),
        handler: NodeId::parse("hub.lapor.test").unwrap(),
        response_due: ts("2026-12-04T16:00:00.000Z"),
    };
    let (e3, c3, j3) = signed(
        base(
            3,
            Some(e2.id.clone()),
            vec![e2.id.clone()],
            "2026-11-27T03:00:00.000Z",
            verifier,
            dispatched,
        ),
        &key,
    );
    // The hub handles the national agency's tickets: its liaison responds, signed by the hub.
    let liaison = Actor {
        role: Role::Liaison,
        officer: Some("kemenkes.1".into()),
        agency: Some(AgencyCode::parse("KEMENKES").unwrap()),
    };
    let responded = Change::Responded {
        message: "Dinas kesehatan kota sudah menegur kepala puskesmas.".into(),
        auto_close_due: ts("2026-12-15T16:00:00.000Z"),
    };
    let hub_event = Event {
        origin: NodeId::parse("hub.lapor.test").unwrap(),
        ..base(
            1,
            None,
            vec![e3.id.clone()],
            "2026-11-30T02:00:00.000Z",
            liaison,
            responded,
        )
    };
    let (e4, c4, j4) = signed(hub_event, &hub_key());
    let admin = Actor {
        role: Role::Admin,
        officer: Some("admin.ntt".into()),
        agency: None,
    };
    let (e5, c5, j5) = signed(
        base(
            4,
            Some(e3.id.clone()),
            vec![e4.id.clone()],
            "2026-12-01T08:30:00.000Z",
            admin,
            Change::Erased {},
        ),
        &key,
    );
    vec![
        ("created", e1, c1, j1),
        ("verified", e2, c2, j2),
        ("dispatched", e3, c3, j3),
        ("responded", e4, c4, j4),
        ("erased", e5, c5, j5),
    ]
}

fn hub_key() -> NodeKey {
    NodeKey::from_signing_key(SigningKey::from_bytes(&[8u8; 32]))
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

#[test]
fn golden_events_round_trip_byte_for_byte_and_verify() {
    let key = fixture_key();
    let mut ring = Keyring::new();
    ring.insert(
        key.id().clone(),
        PublicKey {
            origin: NodeId::parse("prov-53.lapor.test").unwrap(),
            key: key.verifying_key(),
            valid_from: Timestamp::from_millis(0),
            valid_until: None,
        },
    );
    let hub = hub_key();
    ring.insert(
        hub.id().clone(),
        PublicKey {
            origin: NodeId::parse("hub.lapor.test").unwrap(),
            key: hub.verifying_key(),
            valid_from: Timestamp::from_millis(0),
            valid_until: None,
        },
    );
    let update = std::env::var("UPDATE_FIXTURES").is_ok();
    let all = fixtures();
    // Together they fold to a ticket answered by the hub, with the reporter's data erased.
    let events: Vec<Event> = all.iter().map(|(_, e, _, _)| e.clone()).collect();
    let folded = lapor_node::domain::fold::fold(&events);
    assert!(folded.rejected.is_empty(), "{:?}", folded.rejected);
    let state = folded.state.unwrap();
    assert_eq!(state.status, lapor_node::domain::Status::Responded);
    assert!(state.erased);
    for (name, _, canonical, json) in all {
        let path = dir().join(format!("{name}.json"));
        let canon_path = dir().join(format!("{name}.canonical.txt"));
        if update {
            std::fs::write(&path, &json).unwrap();
            std::fs::write(&canon_path, &canonical).unwrap();
        }
        let stored =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            stored,
            json,
            "{name}: the wire format changed (see {})",
            path.display()
        );
        assert_eq!(
            std::fs::read_to_string(&canon_path).unwrap(),
            canonical,
            "{name}: canonical bytes changed"
        );
        let event = signing::verify(stored.as_bytes(), &ring).unwrap();
        // Re-encoding the parsed event gives the same canonical bytes (the format round-trips).
        let again = wire::canonical_bytes(&wire::unsigned_value(&event).unwrap()).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), canonical, "{name}");
    }
    // The fixed key's published identity, as PROTOCOL.md lists it.
    assert_eq!(key.id().as_str(), "ed25519:5jfgyy7ctrjau");
    assert_eq!(
        public_key_text(&key.verifying_key()),
        "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
    );
}
