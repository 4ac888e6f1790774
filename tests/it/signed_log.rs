//! The signed event log: every event is signed and verifies; tampering of any kind is found
//! and named, by `verify` and by the audit.

use lapor_node::crypto::keys::NodeKey;
use lapor_node::crypto::signing::{self, Keyring, PublicKey, VerifyError};
use lapor_node::db::{DbError, schema};
use lapor_node::domain::{Actor, AgencyCode, NodeId, Timestamp};
use lapor_node::event_log::{audit, keys, store as log};
use lapor_node::tickets::{Action, Tickets};
use serde_json::Value;

use crate::helpers::{self, monday_morning, verifier};

fn busy_node(db: &helpers::TestDb) -> Tickets {
    let t = helpers::tickets(db);
    let now = monday_morning();
    for i in 0..5 {
        let id = t
            .submit(&crate::api_report(), &Actor::citizen(), now.plus_millis(i))
            .unwrap()
            .event
            .ticket;
        t.act(
            &id,
            &verifier(),
            Action::Dispatch {
                agency: AgencyCode::parse("DKI-DISHUB").unwrap(),
            },
            now.plus_millis(10 + i),
        )
        .unwrap();
    }
    t
}

fn raw_events(t: &Tickets) -> Vec<(String, String)> {
    let mut c = t.db().read().unwrap();
    log::page(&mut c, None, 1000)
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.raw))
        .collect()
}

fn keyring(t: &Tickets) -> Keyring {
    let mut c = t.db().read().unwrap();
    keys::keyring(&mut c).unwrap()
}

#[test]
fn every_event_is_signed_and_the_audit_passes_on_every_backend() {
    for db in helpers::backends() {
        let t = busy_node(&db);
        let ring = keyring(&t);
        for (id, raw) in raw_events(&t) {
            let e = signing::verify(raw.as_bytes(), &ring).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(e.id.as_str(), id);
        }
        let mut c = t.db().read().unwrap();
        let report = audit::run(&mut c, &every_chain_whole()).unwrap();
        assert_eq!(
            (
                report.events,
                report.verified,
                report.origins,
                report.tickets
            ),
            (10, 10, 1, 5),
            "{}",
            db.name
        );
        assert!(report.faults.is_empty(), "{:?}", report.faults);
        // Each report after the first was sealed ahead at the place after the one before,
        // which the officer's action then took: the writer placed and signed it again.
        let stats = t.intake_stats();
        assert_eq!((stats.reports, stats.resealed), (5, 5), "{}", db.name);
    }
}

#[test]
fn reports_filed_back_to_back_are_stored_as_sealed_ahead_and_the_chain_verifies() {
    for db in helpers::backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        let mut created = Vec::new();
        for i in 0..6 {
            let s = t
                .submit(&crate::api_report(), &Actor::citizen(), now.plus_millis(i))
                .unwrap();
            created.push(s.event);
        }
        // Only the first report (no place known ahead after a start) was placed by the writer.
        let stats = t.intake_stats();
        assert_eq!((stats.reports, stats.resealed), (6, 1), "{}", db.name);
        // The answers are the stored events: same ids, one chain, every signature valid.
        let ring = keyring(&t);
        let stored: std::collections::HashMap<String, String> =
            raw_events(&t).into_iter().collect();
        for (k, e) in created.iter().enumerate() {
            assert_eq!(e.seq, u64::try_from(k + 1).unwrap());
            assert_eq!(e.prev, k.checked_sub(1).map(|j| created[j].id.clone()));
            let raw = stored.get(e.id.as_str()).expect("stored under its id");
            let v = signing::verify(raw.as_bytes(), &ring).unwrap();
            assert_eq!(v.id, e.id);
        }
        // An officer's action takes the place the next report was sealed for; that report is
        // placed again after it, and the chain stays whole.
        t.act(
            &created[0].ticket,
            &verifier(),
            Action::Verify,
            now.plus_millis(50),
        )
        .unwrap();
        let next = t
            .submit(&crate::api_report(), &Actor::citizen(), now.plus_millis(60))
            .unwrap()
            .event;
        assert_eq!(next.seq, 8, "{}", db.name);
        assert_eq!(t.intake_stats().resealed, 2);
        let mut c = t.db().read().unwrap();
        let report = audit::run(&mut c, &every_chain_whole()).unwrap();
        assert!(report.faults.is_empty(), "{:?}", report.faults);
        assert_eq!((report.events, report.verified), (8, 8));
        drop(c);
        // The rows laid out on the request threads are the fold of the stored events, with
        // the stored event (resealed or not) as their head.
        let live = lapor_node::tickets::store::all(&mut t.db().read().unwrap()).unwrap();
        let row = |ticket: &lapor_node::domain::TicketId| {
            live.iter()
                .find(|r| r.id == ticket.to_string())
                .expect("row")
                .clone()
        };
        assert_eq!(row(&next.ticket).head, next.id.to_string(), "{}", db.name);
        assert_eq!(row(&created[5].ticket).head, created[5].id.to_string());
        crate::store::rebuild(&t);
        assert_eq!(
            lapor_node::tickets::store::all(&mut t.db().read().unwrap()).unwrap(),
            live,
            "{}",
            db.name
        );
    }
}

fn set_raw(t: &Tickets, id: &str, raw: String) {
    let id = id.to_owned();
    t.db()
        .write(move |c| {
            use diesel::prelude::*;
            diesel::update(schema::events::table.filter(schema::events::id.eq(id)))
                .set(schema::events::raw.eq(raw))
                .execute(c)
                .map_err(DbError::from)
        })
        .unwrap();
}

#[test]
fn one_flipped_byte_fails_the_audit_naming_the_event() {
    let db = helpers::sqlite();
    let t = busy_node(&db);
    let (id, raw) = raw_events(&t)
        .into_iter()
        .find(|(_, r)| r.contains("Jalan berlubang"))
        .unwrap();
    set_raw(
        &t,
        &id,
        raw.replacen("Jalan berlubang", "Jalan berlubanh", 1),
    );
    let mut c = t.db().read().unwrap();
    let report = audit::run(&mut c, &every_chain_whole()).unwrap();
    // The tampered event is named first; its ticket no longer folds from a `created` event,
    // which the audit reports too.
    assert_eq!(report.faults[0].event, id, "{:?}", report.faults);
    assert_eq!(report.verified, report.events - 1);
    assert!(
        report.faults[0]
            .reason
            .contains("does not match its content"),
        "{:?}",
        report.faults
    );
}

fn mutate(raw: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(raw).unwrap();
    f(v.as_object_mut().unwrap());
    v.to_string().into_bytes()
}

#[test]
fn each_kind_of_bad_event_is_refused_with_its_reason() {
    let db = helpers::sqlite();
    let t = busy_node(&db);
    let ring = keyring(&t);
    let (_, raw) = raw_events(&t).into_iter().next().unwrap();
    let original: Value = serde_json::from_str(&raw).unwrap();

    // Tampered body with the id recomputed: the signature no longer matches.
    let mut body_tampered = original.clone();
    body_tampered["body"]["actor"]["role"] = Value::String("system".into());
    let mut unsigned = body_tampered.as_object().unwrap().clone();
    unsigned.remove("id");
    unsigned.remove("sig");
    body_tampered["id"] = Value::String(
        signing::id_of(&Value::Object(unsigned))
            .unwrap()
            .to_string(),
    );
    assert!(matches!(
        signing::verify(body_tampered.to_string().as_bytes(), &ring),
        Err(VerifyError::BadSignature(_))
    ));

    // Tampered signature.
    let bad_sig = mutate(&raw, |m| {
        let s = m["sig"]["value"].as_str().unwrap().to_owned();
        let flipped = if s.starts_with('A') {
            s.replacen('A', "B", 1)
        } else {
            format!("A{}", &s[1..])
        };
        m["sig"]["value"] = Value::String(flipped);
    });
    assert!(matches!(
        signing::verify(&bad_sig, &ring),
        Err(VerifyError::BadSignature(_))
    ));

    // A key nobody knows, and a key owned by another node.
    let stranger = NodeKey::generate();
    let unknown = mutate(&raw, |m| {
        m["sig"]["key"] = Value::String(stranger.id().to_string());
    });
    assert!(matches!(
        signing::verify(&unknown, &ring),
        Err(VerifyError::UnknownKey(_))
    ));
    let mut ring2 = ring.clone();
    let (kid, own) = ring
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    ring2.insert(
        kid.clone(),
        PublicKey {
            origin: NodeId::parse("prov-53.lapor.test").unwrap(),
            ..own.clone()
        },
    );
    assert!(matches!(
        signing::verify(raw.as_bytes(), &ring2),
        Err(VerifyError::KeyNotOwned { .. })
    ));

    // The key exists but was not valid at the event's time (rotated out before it).
    let mut ring3 = ring.clone();
    ring3.insert(
        kid,
        PublicKey {
            valid_until: Some(Timestamp::from_millis(1)),
            ..own
        },
    );
    assert!(matches!(
        signing::verify(raw.as_bytes(), &ring3),
        Err(VerifyError::KeyNotValidAt { .. })
    ));

    // Non-strict JSON: duplicate key, a float, a missing field.
    let dup = raw.replacen("{\"", "{\"seq\":1,\"", 1);
    assert!(
        matches!(
            signing::verify(dup.as_bytes(), &ring),
            Err(VerifyError::Json(_))
        ),
        "duplicate key accepted"
    );
    let float = mutate(&raw, |m| {
        m.insert("seq".into(), serde_json::json!(1.5));
    });
    assert!(matches!(
        signing::verify(&float, &ring),
        Err(VerifyError::Json(_) | VerifyError::Wire(_))
    ));
    let missing = mutate(&raw, |m| {
        m.remove("ticket");
    });
    assert!(matches!(
        signing::verify(&missing, &ring),
        Err(VerifyError::Wire(_))
    ));
    // Unknown extra fields from a newer node are covered by the signature: added afterwards,
    // they break it.
    let extra = mutate(&raw, |m| {
        m.insert("geo".into(), serde_json::json!({"lat_micro": -10_177_000}));
    });
    assert!(signing::verify(&extra, &ring).is_err());
    // The untouched event still verifies.
    signing::verify(raw.as_bytes(), &ring).unwrap();
}

#[test]
fn the_audit_finds_seq_gaps_and_broken_chains() {
    let db = helpers::sqlite();
    let t = busy_node(&db);
    let rows = raw_events(&t);
    let mut c = t.db().read().unwrap();
    let mut all = log::page(&mut c, None, 1000).unwrap();
    drop(c);
    all.sort_by_key(|r| r.seq);
    let third = all[2].id.clone();
    assert!(rows.iter().any(|(id, _)| *id == third));
    // Remove the third event: the fourth no longer follows a known predecessor.
    t.db()
        .write(move |c| {
            use diesel::prelude::*;
            diesel::delete(schema::events::table.filter(schema::events::id.eq(third)))
                .execute(c)
                .map_err(DbError::from)
        })
        .unwrap();
    let mut c = t.db().read().unwrap();
    let report = audit::run(&mut c, &every_chain_whole()).unwrap();
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.event == all[3].id && f.reason.contains("seq gap")),
        "{:?}",
        report.faults
    );
}

#[test]
fn after_a_key_rotation_old_events_still_verify_and_the_old_key_signs_nothing_new() {
    let db = helpers::sqlite();
    let t = busy_node(&db);
    let s = helpers::settings(&db, "");
    let rotated_at = monday_morning().plus_millis(helpers::DAY_MS);
    let (old, new) = keys::rotate(t.db(), s.node_id(), &s.key_path(), rotated_at).unwrap();
    assert_ne!(old, new);
    let key = keys::load_or_create(t.db(), s.node_id(), &s.key_path()).unwrap();
    assert_eq!(key.id(), &new, "the key file now holds the new key");
    let t2 = Tickets::new(t.db().clone(), &s, key).unwrap();
    let later = rotated_at.plus_millis(60_000);
    t2.submit(&crate::api_report(), &Actor::citizen(), later)
        .unwrap();
    let mut c = t.db().read().unwrap();
    let report = audit::run(&mut c, &every_chain_whole()).unwrap();
    assert_eq!(
        (report.events, report.verified),
        (11, 11),
        "{:?}",
        report.faults
    );
    drop(c);

    // The retired key, used after its window, is refused even though the signature is valid.
    let retired = s
        .key_path()
        .with_file_name(format!("{}.retired.pem", old.as_str().replace(':', "_")));
    let old_key = NodeKey::load(&retired).unwrap();
    let (_, raw) = raw_events(&t)
        .into_iter()
        .find(|(_, r)| r.contains(&format!("\"{}\"", new.as_str())))
        .unwrap();
    let mut v: Value = serde_json::from_str(&raw).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("sig");
    let canonical =
        lapor_node::event_log::wire::canonical_bytes(&Value::Object(obj.clone())).unwrap();
    obj.insert(
        "id".into(),
        Value::String(lapor_node::domain::EventId::of_bytes(&canonical).to_string()),
    );
    obj.insert("sig".into(), signing::sign(&canonical, &old_key).to_value());
    let got = signing::verify(v.to_string().as_bytes(), &keyring(&t));
    assert!(
        matches!(got, Err(VerifyError::KeyNotValidAt { .. })),
        "{got:?}"
    );
}

#[test]
fn erasure_removes_personal_data_and_every_signature_still_verifies() {
    for db in helpers::backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        let created = t
            .submit(&crate::api_report(), &Actor::citizen(), now)
            .unwrap()
            .event;
        let id = created.ticket;
        let commitment = created
            .pii
            .clone()
            .expect("a report with contact commits to it");
        let mut c = t.db().read().unwrap();
        let contact = lapor_node::tickets::store::contact(&mut c, &id)
            .unwrap()
            .unwrap();
        let data = lapor_node::tickets::contact_value(&crate::api_report().contact.unwrap());
        assert!(lapor_node::crypto::pii::opens(
            &commitment,
            contact.salt.as_deref().unwrap(),
            &data
        ));
        drop(c);

        let admin = Actor {
            role: lapor_node::domain::Role::Admin,
            officer: Some("admin".into()),
            agency: None,
        };
        let erased = t.erase(&id, &admin, now.plus_millis(1000)).unwrap();
        assert_eq!(erased.change.kind(), "erased");
        let mut c = t.db().read().unwrap();
        assert!(
            lapor_node::tickets::store::contact(&mut c, &id)
                .unwrap()
                .is_none(),
            "{}",
            db.name
        );
        let state = lapor_node::tickets::store::by_id(&mut c, &id)
            .unwrap()
            .unwrap()
            .state()
            .unwrap();
        assert!(state.erased);
        let report = audit::run(&mut c, &every_chain_whole()).unwrap();
        assert!(report.faults.is_empty(), "{:?}", report.faults);
        assert_eq!(report.verified, report.events);
        drop(c);
        // The created event still carries its commitment, and nothing can erase twice.
        assert!(t.erase(&id, &admin, now.plus_millis(2000)).is_err());
        let citizen = t.erase(&id, &Actor::citizen(), now.plus_millis(2000));
        assert!(
            citizen.is_err(),
            "a citizen may not erase through the officer path"
        );
    }
}

#[test]
fn an_event_from_a_newer_node_with_extra_members_still_verifies() {
    let db = helpers::sqlite();
    let t = busy_node(&db);
    let s = helpers::settings(&db, "");
    let key = NodeKey::load(&s.key_path()).unwrap();
    let (_, raw) = raw_events(&t).into_iter().next().unwrap();
    let mut v: Value = serde_json::from_str(&raw).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("sig");
    // Members this version does not know, signed by their writer.
    obj.insert(
        "geo".into(),
        serde_json::json!({"lat_micro": -10_177_000, "lon_micro": 123_607_000}),
    );
    obj["body"]["photo_count"] = serde_json::json!(2);
    let canonical =
        lapor_node::event_log::wire::canonical_bytes(&Value::Object(obj.clone())).unwrap();
    obj.insert(
        "id".into(),
        Value::String(lapor_node::domain::EventId::of_bytes(&canonical).to_string()),
    );
    obj.insert("sig".into(), signing::sign(&canonical, &key).to_value());
    let event = signing::verify(v.to_string().as_bytes(), &keyring(&t)).unwrap();
    assert_eq!(event.id.as_str(), v["id"].as_str().unwrap());
}

/// Appends `n` postponements of one new ticket as one group (one write transaction).
fn append_group(db: &helpers::TestDb, n: usize, at: Timestamp) -> Vec<String> {
    let s = helpers::settings(db, "");
    let database = lapor_node::app::open_database(&s).unwrap();
    let key = keys::load_or_create(&database, s.node_id(), &s.key_path()).unwrap();
    let origin = s.node_id().clone();
    let ticket = lapor_node::domain::TicketId::new();
    let drafts = (0..n)
        .map(|i| log::Draft {
            ticket,
            parents: Vec::new(),
            at: at.plus_millis(i64::try_from(i).unwrap_or(0)),
            actor: verifier(),
            change: lapor_node::domain::Change::Postponed {
                note: format!("menunggu dokumen {i}"),
            },
            pii: None,
        })
        .collect();
    database
        .write(move |c| {
            log::append_many(c, &origin, key.as_ref(), drafts, at)
                .map_err(|e| DbError::Unavailable(e.to_string()))
        })
        .unwrap();
    let mut c = database.read().unwrap();
    log::for_ticket(&mut c, &ticket)
        .unwrap()
        .into_iter()
        .map(|r| r.raw)
        .collect()
}

#[test]
fn events_appended_together_share_one_signature_and_each_verifies_alone() {
    for db in helpers::backends() {
        let t = helpers::tickets(&db);
        let ring = keyring(&t);
        let group = append_group(&db, 7, monday_morning());
        let other = append_group(&db, 3, monday_morning().plus_millis(100));
        let lone = append_group(&db, 1, monday_morning().plus_millis(200));
        let values: Vec<Value> = group
            .iter()
            .map(|raw| serde_json::from_str(raw).unwrap())
            .collect();
        for (i, v) in values.iter().enumerate() {
            // One signature for the group; each event names its place in the tree.
            assert_eq!(v["sig"]["value"], values[0]["sig"]["value"]);
            assert_eq!(v["sig"]["group"]["index"], serde_json::json!(i));
            assert_eq!(v["sig"]["group"]["size"], serde_json::json!(7));
            let e = signing::verify(group[i].as_bytes(), &ring).unwrap();
            assert_eq!(e.id.as_str(), v["id"].as_str().unwrap(), "{}", db.name);
        }
        assert_ne!(values[0]["sig"]["value"], {
            let o: Value = serde_json::from_str(&other[0]).unwrap();
            o["sig"]["value"].clone()
        });
        // One event alone keeps the single-event signature.
        let l: Value = serde_json::from_str(&lone[0]).unwrap();
        assert!(l["sig"].get("group").is_none(), "{l}");
        signing::verify(lone[0].as_bytes(), &ring).unwrap();
        // All of them together: one check per distinct signature.
        let mut all = values.clone();
        all.extend(other.iter().map(|r| serde_json::from_str(r).unwrap()));
        assert_eq!(signing::verify_many(&all, &ring).unwrap().len(), 10);
        // The audit verifies their signatures like any other (its only findings: these bare
        // postponements have no `created` event before them).
        let mut c = t.db().read().unwrap();
        let report = audit::run(&mut c, &every_chain_whole()).unwrap();
        assert_eq!((report.events, report.verified), (11, 11), "{}", db.name);
        assert!(
            report
                .faults
                .iter()
                .all(|f| f.reason.contains("must be `created`")),
            "{:?}",
            report.faults
        );
    }
}

#[test]
fn a_group_signature_moved_or_its_path_altered_is_refused() {
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    let ring = keyring(&t);
    let group = append_group(&db, 6, monday_morning());
    let other = append_group(&db, 6, monday_morning().plus_millis(100));
    let raw = &group[2];
    let bad_sig = |bytes: &[u8]| {
        matches!(
            signing::verify(bytes, &ring),
            Err(VerifyError::BadSignature(_))
        )
    };
    let malformed = |bytes: &[u8], what: &str| match signing::verify(bytes, &ring) {
        Err(VerifyError::Signature(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a malformed signature ({what}), got {other:?}"),
    };

    // Another place in the tree, or another size, leads to another root.
    let moved = mutate(raw, |m| m["sig"]["group"]["index"] = serde_json::json!(3));
    assert!(signing::verify(&moved, &ring).is_err());
    let resized = mutate(raw, |m| m["sig"]["group"]["size"] = serde_json::json!(7));
    assert!(bad_sig(&resized));
    // A sibling replaced, or the path of a neighbour.
    let swapped = mutate(raw, |m| {
        m["sig"]["group"]["path"][0] = serde_json::json!("00".repeat(32));
    });
    assert!(bad_sig(&swapped));
    let neighbour: Value = serde_json::from_str(&group[3]).unwrap();
    let borrowed = mutate(raw, |m| {
        m["sig"]["group"]["path"] = neighbour["sig"]["group"]["path"].clone();
    });
    assert!(signing::verify(&borrowed, &ring).is_err());
    // The same place in another group: that group's signature covers other events.
    let stranger: Value = serde_json::from_str(&other[2]).unwrap();
    let grafted = mutate(raw, |m| m["sig"] = stranger["sig"].clone());
    assert!(bad_sig(&grafted));
    // Without its place, the signature is read as a single event's, which it is not.
    let stripped = mutate(raw, |m| {
        m["sig"].as_object_mut().unwrap().remove("group");
    });
    assert!(bad_sig(&stripped));
    // Malformed places are named.
    malformed(
        &mutate(raw, |m| m["sig"]["group"]["size"] = serde_json::json!(1)),
        "`size`",
    );
    malformed(
        &mutate(raw, |m| m["sig"]["group"]["index"] = serde_json::json!(6)),
        "`index`",
    );
    malformed(
        &mutate(raw, |m| m["sig"]["group"]["index"] = serde_json::json!("2")),
        "`index`",
    );
    malformed(
        &mutate(raw, |m| {
            m["sig"]["group"]["path"][0] = serde_json::json!("AB".repeat(32));
        }),
        "hex",
    );
    // An unknown member, and a path too short for its place, have reasons of their own.
    assert_eq!(
        signing::verify(
            &mutate(raw, |m| m["sig"]["group"]["depth"] = serde_json::json!(3)),
            &ring
        )
        .unwrap_err(),
        VerifyError::UnknownSigMember("sig.group.depth".into())
    );
    assert_eq!(
        signing::verify(
            &mutate(raw, |m| {
                m["sig"]["group"]["path"].as_array_mut().unwrap().pop();
            }),
            &ring
        )
        .unwrap_err(),
        VerifyError::GroupPathMismatch
    );
    // In a batch, the altered event is named by its position.
    let mut values: Vec<Value> = group
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    values[4]["sig"]["group"]["path"][0] = serde_json::json!("11".repeat(32));
    let (at, e) = signing::verify_many(&values, &ring).unwrap_err();
    assert_eq!(at, 4);
    assert!(matches!(e, VerifyError::BadSignature(_)), "{e:?}");
    // Untouched, it verifies.
    signing::verify(raw.as_bytes(), &ring).unwrap();
}

/// The strictest audit: every chain must be held whole (as on the hub).
fn every_chain_whole() -> audit::Scope {
    audit::Scope {
        node: lapor_node::domain::NodeId::parse("hub.lapor.test").unwrap(),
        holds_all: true,
    }
}
