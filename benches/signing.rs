//! Signing and verification rates, in one run:
//! - ed25519-dalek's raw sign / verify_strict / verify_batch on 600-byte messages (baseline);
//! - preparing an event for the log without a signature (canonical bytes + id), with its own
//!   signature, and signed in groups of 8 (one signature over a Merkle tree of 8 ids);
//! - verifying stored events one by one (`signing::verify`: strict JSON, id, key window,
//!   signature) and in batches of 64 (`signing::verify_many`), with their own signatures and
//!   with group signatures (8 distinct signatures in a batch of 64).
//!
//! `cargo bench --bench signing` (env `BENCH_N`).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark program: it reports on stdout and stops on any setup failure"
)]

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use lapor_node::crypto::keys::KeyId;
use lapor_node::crypto::signing::{self, SignEvents};
use lapor_node::domain::{Actor, Timestamp};
use lapor_node::event_log::{keys, store as log, wire};

/// The baseline signer: same log, same row, no signature computed.
struct NoSignature(KeyId);

impl SignEvents for NoSignature {
    fn key_id(&self) -> &KeyId {
        &self.0
    }

    fn sign_event(&self, _canonical: &[u8]) -> signing::EventSig {
        signing::EventSig {
            group: None,
            key: self.0.as_str().to_owned(),
            value: String::new(),
        }
    }

    fn sign_events(
        &self,
        ids: &[lapor_node::domain::EventId],
    ) -> Result<Vec<signing::EventSig>, signing::VerifyError> {
        Ok(ids.iter().map(|_| self.sign_event(&[])).collect())
    }
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

mod common;

fn main() {
    let n = common::bench_n(4000);
    let node = common::node();
    let (db, key, tickets) = (node.db.clone(), node.key.clone(), node.tickets.clone());
    let mut report = common::report();
    // Without a contact (the events carry no commitment), so filed as anonymous.
    report.contact = None;
    report.privacy.anonymous = true;
    for _ in 0..n {
        tickets
            .submit(&report, &Actor::citizen(), Timestamp::now())
            .expect("submit");
    }
    let mut c = db.read().expect("conn");
    let rows = log::page(&mut c, None, i64::try_from(n).unwrap_or(i64::MAX)).expect("events");
    let ring = keys::keyring(&mut c).expect("keyring");
    drop(c);
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.raw).expect("json"))
        .collect();
    let events: Vec<_> = rows
        .iter()
        .map(|r| log::decode(r).expect("decode"))
        .collect();

    // Raw dalek baseline.
    let sk = SigningKey::from_bytes(&[9u8; 32]);
    let vk: VerifyingKey = sk.verifying_key();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("{i:0600}").into_bytes()).collect();
    let mut sigs: Vec<Signature> = Vec::with_capacity(n);
    let raw_sign = rate(n, || sigs.extend(msgs.iter().map(|m| sk.sign(m))));
    let raw_verify = rate(n, || {
        for (m, s) in msgs.iter().zip(&sigs) {
            vk.verify_strict(m, s).expect("verify");
        }
    });
    let raw_batch = rate(n, || {
        for (ms, ss) in msgs.chunks(64).zip(sigs.chunks(64)) {
            let refs: Vec<&[u8]> = ms.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&refs, ss, &vec![vk; ss.len()]).expect("batch");
        }
    });

    // Preparing events for the log, without and with the signature.
    let unsigned = rate(n, || {
        for e in &events {
            let v = wire::unsigned_value(e).expect("value");
            let bytes = wire::canonical_bytes(&v).expect("canonical");
            std::hint::black_box(lapor_node::domain::EventId::of_bytes(&bytes));
        }
    });
    let signed = rate(n, || {
        for e in &events {
            let v = wire::unsigned_value(e).expect("value");
            let bytes = wire::canonical_bytes(&v).expect("canonical");
            std::hint::black_box(lapor_node::domain::EventId::of_bytes(&bytes));
            std::hint::black_box(signing::sign(&bytes, &key));
        }
    });

    let grouped = rate(n, || {
        for chunk in events.chunks(8) {
            let ids: Vec<_> = chunk
                .iter()
                .map(|e| {
                    let v = wire::unsigned_value(e).expect("value");
                    let bytes = wire::canonical_bytes(&v).expect("canonical");
                    lapor_node::domain::EventId::of_bytes(&bytes)
                })
                .collect();
            if ids.len() > 1 {
                std::hint::black_box(signing::sign_group(&ids, &key).expect("group"));
            }
        }
    });
    // The same events, signed in groups of 8.
    let mut group_values = values.clone();
    for chunk in group_values.chunks_mut(8).filter(|c| c.len() > 1) {
        let ids: Vec<_> = chunk
            .iter()
            .map(|v| lapor_node::domain::EventId::parse(v["id"].as_str().expect("id")).expect("id"))
            .collect();
        for (v, sig) in chunk
            .iter_mut()
            .zip(signing::sign_group(&ids, &key).expect("group"))
        {
            v["sig"] = sig.to_value();
        }
    }

    // Verifying stored events.
    let single = rate(n, || {
        for r in &rows {
            signing::verify(r.raw.as_bytes(), &ring).expect("verify");
        }
    });
    let batch = rate(n, || {
        for chunk in values.chunks(64) {
            signing::verify_many(chunk, &ring).expect("verify_many");
        }
    });
    let group_batch = rate(n, || {
        for chunk in group_values.chunks(64) {
            signing::verify_many(chunk, &ring).expect("verify_many");
        }
    });

    // Database appends (one transaction each, through the writer) with and without computing
    // the signature, interleaved in two rounds to spread the machine's noise over both.
    let node_id = lapor_node::domain::NodeId::parse("prov-31.lapor.test").expect("node id");
    let unsigned_signer: Arc<dyn SignEvents> = Arc::new(NoSignature(key.id().clone()));
    let signer: Arc<dyn SignEvents> = key.clone();
    let (mut t_unsigned, mut t_signed) = (0.0f64, 0.0f64);
    for _ in 0..2 {
        for (signer, total) in [
            (&unsigned_signer, &mut t_unsigned),
            (&signer, &mut t_signed),
        ] {
            let start = Instant::now();
            for _ in 0..n / 2 {
                let (s, node) = (signer.clone(), node_id.clone());
                db.write(move |c| {
                    let draft = log::Draft {
                        ticket: lapor_node::domain::TicketId::new(),
                        parents: vec![],
                        at: Timestamp::now(),
                        actor: Actor {
                            role: lapor_node::domain::Role::Verifier,
                            officer: None,
                            agency: None,
                        },
                        change: lapor_node::domain::Change::Verified {},
                        pii: None,
                    };
                    log::append(c, &node, s.as_ref(), draft, Timestamp::now())
                        .map_err(|e| lapor_node::db::DbError::Unavailable(e.to_string()))
                })
                .expect("append");
            }
            *total += start.elapsed().as_secs_f64();
        }
    }
    let append_unsigned = n as f64 / t_unsigned;
    let append_signed = n as f64 / t_signed;

    println!("signing benchmark: {n} events / messages, one core");
    println!("| operation | per second | ratio |");
    println!("|---|---|---|");
    println!("| raw ed25519 sign (600 B) | {raw_sign:.0} | |");
    println!("| raw ed25519 verify_strict (baseline) | {raw_verify:.0} | 1.00 |");
    println!(
        "| raw ed25519 verify_batch(64) | {raw_batch:.0} | {:.2} |",
        raw_batch / raw_verify
    );
    println!(
        "| stored event verify (single) | {single:.0} | {:.2} |",
        single / raw_verify
    );
    println!(
        "| stored event verify_many (64) | {batch:.0} | {:.2} |",
        batch / raw_verify
    );
    println!(
        "| group-signed event verify_many (64, groups of 8) | {group_batch:.0} | {:.2} |",
        group_batch / raw_verify
    );
    println!("| prepare event, unsigned (baseline) | {unsigned:.0} | 1.00 |");
    println!(
        "| prepare event, signed | {signed:.0} | {:.2} |",
        signed / unsigned
    );
    println!(
        "| prepare event, signed in groups of 8 | {grouped:.0} | {:.2} |",
        grouped / unsigned
    );
    println!(
        "| database append, signature not computed (baseline) | {append_unsigned:.0} | 1.00 |"
    );
    println!(
        "| database append, signed | {append_signed:.0} | {:.2} |",
        append_signed / append_unsigned
    );
}
