//! National-scale data for tests and benchmarks: realistic signed events of N tickets across
//! the 38 provinces, written into a hub's database as the hub would hold them (events with
//! their chains and chain heads, the projection, the statistics).
//!
//! Each province node has its own key and chain; a ticket is filed at its province's node,
//! verified (or not), dispatched to an agency of its province (the node itself), a national
//! agency (the hub) or another province (forwarding), started, answered, resolved, rated,
//! sometimes returned as "not our authority" and re-dispatched, sometimes archived, with SLA
//! breaches recorded when a deadline passed. Every event is written by the node with the
//! authority for it, so the fold accepts it; deadlines are calendar days (no holiday list).
//!
//! ```text
//!  rng(seed) ─► ticket lifecycles ─► events (per origin chain: seq, prev, id) ─► group
//!  signatures per origin ─► events + chain_heads + tickets rows + cells (summed in memory)
//! ```

use std::collections::BTreeMap;

use rand::Rng;
pub use rand::rngs::StdRng;

use super::cells::Cells;
use crate::crypto::keys::NodeKey;
use crate::crypto::signing::sign_group;
use crate::db::DbConn;
use crate::domain::event::{Actor, ArchiveReason, Change, Created, Role, SlaStep};
use crate::domain::{
    AgencyCode, Category, Channel, Event, EventId, NodeId, Privacy, RegionCode, ReportKind,
    TicketId, Timestamp, TrackingCode, fold,
};
use crate::event_log::model::EventRow;
use crate::event_log::wire;
use crate::tickets::model::TicketRow;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const CATEGORIES: [&str; 8] = [
    "infrastruktur",
    "kesehatan",
    "pendidikan",
    "kependudukan",
    "transportasi",
    "lingkungan",
    "bansos",
    "pelayanan_publik",
];
const NATIONAL: [&str; 4] = ["KEMENKES", "KEMENDIKBUD", "KEMENPUPR", "PLN"];

/// What was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Tickets written.
    pub tickets: usize,
    /// Events written.
    pub events: usize,
    /// Events the fold refused (a generator fault if not 0; they are not written).
    pub refused: usize,
}

/// The national federation the data belongs to: 38 province nodes with their keys, the hub.
#[derive(Debug)]
pub struct Nation {
    provinces: Vec<(String, NodeId, NodeKey)>,
    hub: NodeId,
    /// The hub's key (the hub writes the events of the tickets it handles).
    hub_key: Option<NodeKey>,
    heads: BTreeMap<String, (i64, String)>,
}

/// One generated batch: rows to store and the cells they add.
#[derive(Debug, Default)]
pub struct Batch {
    /// Signed events.
    pub events: Vec<EventRow>,
    /// Projection rows.
    pub tickets: Vec<TicketRow>,
    /// Their statistics.
    pub cells: Cells,
    /// Events the fold refused (0 unless the generator is wrong).
    pub refused: usize,
}

impl Batch {
    /// Stores the batch in the caller's transaction.
    ///
    /// # Errors
    ///
    /// The database refused a row.
    pub fn write(&self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        crate::event_log::store::copy_rows(conn, &self.events)?;
        crate::tickets::store::insert_many_counted_apart(conn, &self.tickets)?;
        super::store::apply(conn, &self.cells)
    }
}

impl Nation {
    /// Province nodes `prov-<code>.lapor.test` for `codes`, with fresh keys; hub `hub`.
    ///
    /// # Errors
    ///
    /// A code that does not make a node id.
    pub fn new(
        codes: &[String],
        hub: NodeId,
        hub_key: NodeKey,
    ) -> Result<Self, crate::domain::IdError> {
        let provinces = codes
            .iter()
            .map(|c| {
                Ok((
                    c.clone(),
                    NodeId::parse(&format!("prov-{c}.lapor.test"))?,
                    NodeKey::generate(),
                ))
            })
            .collect::<Result<_, crate::domain::IdError>>()?;
        Ok(Self {
            provinces,
            hub,
            hub_key: Some(hub_key),
            heads: BTreeMap::new(),
        })
    }

    /// The agencies the generated tickets are dispatched to, with their owners: `P<code>-DINAS`
    /// of each province node, and the national ones (the hub's).
    ///
    /// # Errors
    ///
    /// A row that does not parse (a generator fault).
    pub fn agencies(
        &self,
    ) -> Result<Vec<crate::domain::reference::Agency>, crate::domain::reference::ReferenceError>
    {
        let mut text = String::from("code,name,level,region,owner_node\n");
        for (code, node, _) in &self.provinces {
            text.push_str(&format!(
                "P{code}-DINAS,Dinas Provinsi {code},province,{code},{node}\n"
            ));
        }
        for a in NATIONAL {
            text.push_str(&format!("{a},{a},national,31,{}\n", self.hub));
        }
        crate::domain::reference::parse_agencies(&text)
    }

    /// Generates `n` tickets filed in the year before `now` (from `rng`), their events signed
    /// by their writers and chained after what this nation generated before.
    ///
    /// # Errors
    ///
    /// An event that cannot be encoded or signed (a generator fault).
    pub fn batch(&mut self, rng: &mut StdRng, n: usize, now: Timestamp) -> Result<Batch, String> {
        let mut batch = Batch::default();
        let mut pending: BTreeMap<String, Vec<(EventId, String, usize)>> = BTreeMap::new();
        for _ in 0..n {
            // Java and the big provinces file more: weight by a fixed pseudo-population.
            let p = {
                let w = rng.gen_range(0..(self.provinces.len() * 3));
                if w < self.provinces.len() { w } else { w % 8 }
            };
            let filed = now.millis() - rng.gen_range(DAY..365 * DAY);
            let Some((created, mut steps)) = lifecycle(rng, self, p, filed) else {
                continue;
            };
            // What would happen after `now` has not happened yet.
            if let Some(cut) = steps.iter().position(|(_, at, _, _)| *at > now.millis()) {
                steps.truncate(cut);
            }
            let ticket = TicketId::new();
            let origin = self.provinces[p].1.clone();
            let mut events: Vec<Event> = Vec::with_capacity(steps.len() + 1);
            let mut parent: Option<EventId> = None;
            let first = (
                origin,
                filed,
                Actor::citizen(),
                Change::Created(Box::new(created)),
            );
            for (writer, at, actor, change) in std::iter::once(first).chain(steps) {
                let head = self
                    .heads
                    .entry(writer.to_string())
                    .or_insert((0, String::new()));
                let mut e = Event {
                    id: EventId::of_bytes(b""),
                    origin: writer.clone(),
                    seq: u64::try_from(head.0 + 1).unwrap_or(u64::MAX),
                    prev: if head.0 == 0 {
                        None
                    } else {
                        EventId::parse(&head.1).ok()
                    },
                    ticket,
                    parents: parent.iter().cloned().collect(),
                    at: Timestamp::from_millis(at),
                    actor,
                    change,
                    pii: None,
                };
                let canonical =
                    wire::canonical_bytes(&wire::unsigned_value(&e).map_err(|x| x.to_string())?)
                        .map_err(|x| x.to_string())?;
                e.id = EventId::of_bytes(&canonical);
                *head = (head.0 + 1, e.id.to_string());
                parent = Some(e.id.clone());
                let canonical = String::from_utf8(canonical).map_err(|x| x.to_string())?;
                pending.entry(writer.to_string()).or_default().push((
                    e.id.clone(),
                    canonical,
                    batch.events.len(),
                ));
                batch.events.push(EventRow {
                    id: e.id.to_string(),
                    origin: writer.to_string(),
                    seq: head.0,
                    prev: e.prev.as_ref().map(ToString::to_string),
                    ticket: ticket.to_string(),
                    kind: e.change.kind().to_owned(),
                    at_ms: e.at.millis(),
                    raw: String::new(),
                    key_id: None,
                    sig: None,
                    stored_at_ms: now.millis(),
                });
                events.push(e);
            }
            let folded = fold::fold(&events);
            batch.refused += folded.rejected.len();
            if let (Some(state), Some(head)) = (folded.state, folded.head) {
                batch.cells.ticket(&state, 1);
                batch.tickets.push(
                    TicketRow::from_state(&ticket, &state, &head).map_err(|x| x.to_string())?,
                );
            }
        }
        self.sign(&mut batch, pending)?;
        batch.cells.prune();
        Ok(batch)
    }

    /// Signs each origin's events of the batch under one group signature.
    fn sign(
        &self,
        batch: &mut Batch,
        pending: BTreeMap<String, Vec<(EventId, String, usize)>>,
    ) -> Result<(), String> {
        for (origin, list) in pending {
            let key = if origin == self.hub.as_str() {
                None
            } else {
                self.provinces
                    .iter()
                    .find(|(_, n, _)| n.as_str() == origin)
                    .map(|(_, _, k)| k)
            };
            let Some(key) = key.or(self.hub_key.as_ref()) else {
                return Err(format!("no key for {origin}"));
            };
            for chunk in list.chunks(1024) {
                let ids: Vec<EventId> = chunk.iter().map(|(id, _, _)| id.clone()).collect();
                let sigs = if ids.len() == 1 {
                    vec![crate::crypto::signing::sign(chunk[0].1.as_bytes(), key)]
                } else {
                    sign_group(&ids, key).map_err(|x| x.to_string())?
                };
                for ((id, canonical, at), sig) in chunk.iter().zip(sigs) {
                    let mut v: serde_json::Value =
                        serde_json::from_str(canonical).map_err(|x| x.to_string())?;
                    v["id"] = serde_json::Value::String(id.to_string());
                    v["sig"] = sig.to_value();
                    let row = &mut batch.events[*at];
                    row.raw = v.to_string();
                    row.key_id = Some(sig.key.clone());
                    row.sig = Some(sig.value.clone());
                }
            }
        }
        Ok(())
    }

    /// The chain heads reached, `(origin, seq, last id)`.
    #[must_use]
    pub fn heads(&self) -> Vec<(String, i64, String)> {
        self.heads
            .iter()
            .map(|(o, (s, id))| (o.clone(), *s, id.clone()))
            .collect()
    }

    /// The public keys of the province nodes (to pin on the hub).
    pub fn keys(&self) -> impl Iterator<Item = (&NodeId, &NodeKey)> {
        self.provinces.iter().map(|(_, n, k)| (n, k))
    }
}

/// One step of a lifecycle: `(writer, at in ms, actor, change)`.
type Step = (NodeId, i64, Actor, Change);

/// One ticket's lifecycle, legal by construction.
fn lifecycle(
    rng: &mut StdRng,
    nation: &Nation,
    p: usize,
    filed: i64,
) -> Option<(Created, Vec<Step>)> {
    let (code, origin, _) = &nation.provinces[p];
    let ms = Timestamp::from_millis;
    let region = if rng.gen_bool(0.8) {
        format!("{code}{:02}", rng.gen_range(1..=20))
    } else {
        code.clone()
    };
    let kind = match rng.gen_range(0..10) {
        0..=6 => ReportKind::Pengaduan,
        7 | 8 => ReportKind::Aspirasi,
        _ => ReportKind::PermintaanInformasi,
    };
    let channel = match rng.gen_range(0..20) {
        0..=11 => Channel::Web,
        12..=16 => Channel::Sms,
        17 | 18 => Channel::Api,
        _ => Channel::WalkIn,
    };
    let verify_due = filed + 3 * DAY;
    let created = Created {
        tracking_code: tracking_code(rng, code)?,
        report_kind: kind,
        title: "Laporan".into(),
        text: "Isi laporan warga (data sintetis untuk uji skala nasional).".into(),
        category: Category::parse(CATEGORIES[rng.gen_range(0..CATEGORIES.len())])
            .unwrap_or_else(|_| unreachable_category()),
        region: RegionCode::parse(&region)
            .unwrap_or_else(|_| RegionCode::parse(code).unwrap_or_else(|_| unreachable_region())),
        suggested_agency: None,
        channel,
        privacy: Privacy {
            anonymous: rng.gen_bool(0.2),
            confidential: rng.gen_bool(0.05),
        },
        verify_due: ms(verify_due),
        overall_due: ms(filed + 60 * DAY),
    };
    let staff = |role: Role, agency: Option<&AgencyCode>| Actor {
        role,
        officer: Some("gen".into()),
        agency: agency.cloned(),
    };
    let system = Actor {
        role: Role::System,
        officer: None,
        agency: None,
    };
    let mut out = Vec::new();
    let mut t = filed + rng.gen_range(HOUR..5 * DAY);
    if rng.gen_bool(0.05) {
        return Some((created, out)); // never touched yet
    }
    if t > verify_due {
        out.push((
            origin.clone(),
            verify_due + HOUR,
            system.clone(),
            Change::SlaBreached {
                step: SlaStep::VerifyDispatch,
            },
        ));
    }
    if rng.gen_bool(0.6) {
        out.push((
            origin.clone(),
            t,
            staff(Role::Verifier, None),
            Change::Verified {},
        ));
        t += rng.gen_range(HOUR..2 * DAY);
    }
    if rng.gen_bool(0.08) {
        out.push((
            origin.clone(),
            t,
            staff(Role::Verifier, None),
            Change::Archived {
                reason: ArchiveReason::Duplicate,
            },
        ));
        return Some((created, out));
    }
    let mut returns = usize::from(rng.gen_bool(0.1));
    loop {
        let (agency, handler) = match rng.gen_range(0..20) {
            0..=15 => (format!("P{code}-DINAS"), origin.clone()),
            16..=18 => (
                NATIONAL[rng.gen_range(0..NATIONAL.len())].to_owned(),
                nation.hub.clone(),
            ),
            _ => {
                let (c, n, _) = &nation.provinces[rng.gen_range(0..nation.provinces.len())];
                (format!("P{c}-DINAS"), n.clone())
            }
        };
        let Ok(agency) = AgencyCode::parse(&agency) else {
            return Some((created, out));
        };
        let response_due = t + 7 * DAY;
        out.push((
            origin.clone(),
            t,
            staff(Role::Verifier, None),
            Change::Dispatched {
                agency: agency.clone(),
                handler: handler.clone(),
                response_due: ms(response_due),
            },
        ));
        t += rng.gen_range(HOUR..6 * DAY);
        if returns > 0 {
            returns -= 1;
            out.push((
                handler.clone(),
                t,
                staff(Role::Liaison, Some(&agency)),
                Change::NotOurAuthority {
                    note: "bukan wewenang".into(),
                },
            ));
            t += rng.gen_range(HOUR..2 * DAY);
            continue;
        }
        if rng.gen_bool(0.1) {
            return Some((created, out)); // waiting for the agency
        }
        out.push((
            handler.clone(),
            t,
            staff(Role::Liaison, Some(&agency)),
            Change::Started {},
        ));
        t += rng.gen_range(HOUR..10 * DAY);
        if t > response_due {
            out.push((
                handler.clone(),
                response_due + HOUR,
                system.clone(),
                Change::SlaBreached {
                    step: SlaStep::Response,
                },
            ));
        }
        out.push((
            handler.clone(),
            t,
            staff(Role::Liaison, Some(&agency)),
            Change::Responded {
                message: "ditindaklanjuti".into(),
                auto_close_due: ms(t + 14 * DAY),
            },
        ));
        if rng.gen_bool(0.15) {
            return Some((created, out)); // waiting for the citizen
        }
        t += rng.gen_range(HOUR..20 * DAY);
        out.push((
            handler.clone(),
            t,
            staff(Role::Liaison, Some(&agency)),
            Change::Resolved {
                message: "selesai".into(),
                auto_close_due: ms(t + 14 * DAY),
                reopen_until: ms(t + 14 * DAY),
            },
        ));
        if rng.gen_bool(0.6) {
            let rating = rng.gen_range(1..=5);
            out.push((
                origin.clone(),
                t + rng.gen_range(HOUR..7 * DAY),
                Actor::citizen(),
                Change::Rated { rating },
            ));
        }
        return Some((created, out));
    }
}

#[expect(
    clippy::panic,
    reason = "the generator's constant category list is valid"
)]
fn unreachable_category() -> Category {
    panic!("generator category list is invalid")
}

#[expect(clippy::panic, reason = "the generator's region codes are valid")]
fn unreachable_region() -> RegionCode {
    panic!("generator region code is invalid")
}

fn tracking_code(rng: &mut StdRng, province: &str) -> Option<TrackingCode> {
    let p = crate::domain::ProvinceCode::parse(province).ok()?;
    Some(TrackingCode::from_symbols(&p, rng.r#gen()))
}

/// Records the chain heads the generated events reached (after the last batch).
///
/// # Errors
///
/// The database refused a row.
pub fn write_heads(conn: &mut DbConn, heads: &[(String, i64, String)]) -> diesel::QueryResult<()> {
    use crate::db::schema::chain_heads::dsl as h;
    use diesel::prelude::*;
    use diesel::upsert::excluded;
    for (origin, seq, last) in heads {
        crate::db::on_backend!(conn, c => diesel::insert_into(h::chain_heads)
            .values((h::origin.eq(origin), h::seq.eq(seq), h::last_id.eq(last)))
            .on_conflict(h::origin)
            .do_update()
            .set((h::seq.eq(excluded(h::seq)), h::last_id.eq(excluded(h::last_id))))
            .execute(c))?;
    }
    Ok(())
}

/// The province codes of a `provinces.csv` text (its first column).
#[must_use]
pub fn province_codes(csv: &str) -> Vec<String> {
    csv.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split(',').next())
        .map(str::to_owned)
        .collect()
}
