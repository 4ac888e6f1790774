//! The national part of `/nasional`, read from the statistics every node keeps with each stored
//! event (`hub::report`, the same read model as `/api/v1/hub/*`): reports and SLA compliance by
//! province for everyone (small cells shown as `<k`), and for analysts and admins SLA
//! compliance by agency, the flows from origin provinces to handling nodes, and the open
//! backlog by age. The last twelve months, as the API's default period. On the hub, analysts
//! and admins also see the federation's health (`hub::watch`, as `GET /api/v1/hub/federation`):
//! each member node's contact, version, clock, head reported vs held, quarantine, chain audit
//! and outbox towards each peer, and the alerts that hold.

use maud::{Markup, html};

use super::charts::{self, Bar};
use super::i18n::Lang;
use crate::db::DbConn;
use crate::hub::query::{self, Dataset};
use crate::hub::report::{self, Audience, Table, Value};

/// The tables the national part draws.
#[derive(Debug, Clone)]
pub struct National {
    /// Reports by province.
    pub by_province: Table,
    /// SLA outcomes by province.
    pub sla_by_province: Table,
    /// For officials: SLA outcomes by agency, flows, backlog by age.
    pub officials: Option<(Table, Table, Table)>,
}

fn ask(
    conn: &mut DbConn,
    dataset: Dataset,
    group_by: &str,
    who: Audience,
) -> diesel::QueryResult<Table> {
    let today = crate::hub::cells::wib_date(crate::domain::Timestamp::now());
    let pairs = if group_by.is_empty() {
        Vec::new()
    } else {
        vec![("group_by".to_owned(), group_by.to_owned())]
    };
    // Fixed, known-good parameters: a refusal here is a bug, answered as an empty table.
    let Ok(req) = query::parse(dataset, &pairs, today) else {
        return Err(diesel::result::Error::NotFound);
    };
    report::answer(conn, &req, today, who)
}

/// The national figures for `who` (`full`: analysts and admins).
///
/// # Errors
///
/// The database could not be read.
pub fn figures(conn: &mut DbConn, who: Audience, full: bool) -> diesel::QueryResult<National> {
    Ok(National {
        by_province: ask(conn, Dataset::Stats, "province", who)?,
        sla_by_province: ask(conn, Dataset::Sla, "province", who)?,
        officials: if full {
            Some((
                ask(conn, Dataset::Sla, "agency", who)?,
                ask(conn, Dataset::Flows, "origin,handler", who)?,
                ask(conn, Dataset::Backlog, "", who)?,
            ))
        } else {
            None
        },
    })
}

fn column(t: &Table, name: &str) -> Option<usize> {
    t.columns.iter().position(|c| *c == name)
}

/// A figure as a bar: counts as themselves, `<k` as an empty bar, rates in per mille.
fn bar(label: String, v: Option<&Value>) -> Bar {
    match v {
        Some(Value::Count(n)) => Bar {
            label,
            value: *n,
            shown: n.to_string(),
        },
        Some(Value::Below(k)) => Bar {
            label,
            value: 0,
            shown: format!("<{k}"),
        },
        Some(Value::Withheld) => Bar {
            label,
            value: 0,
            shown: "x".to_owned(),
        },
        Some(Value::Decimal(Some(x))) => Bar {
            label,
            #[expect(clippy::cast_possible_truncation, reason = "a percentage for a chart")]
            value: (x * 10.0).round() as i64,
            shown: format!("{x:.0} %"),
        },
        Some(Value::Decimal(None)) | None => Bar {
            label,
            value: 0,
            shown: "–".to_owned(),
        },
    }
}

fn bars_of(t: &Table, col: &str) -> Vec<Bar> {
    let Some(i) = column(t, col) else {
        return Vec::new();
    };
    t.rows
        .iter()
        .map(|r| bar(r.keys.join(" → "), r.values.get(i)))
        .collect()
}

fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Count(n)) => n.to_string(),
        Some(Value::Below(k)) => format!("<{k}"),
        Some(Value::Withheld) => "x".to_owned(),
        Some(Value::Decimal(Some(x))) => format!("{x:.1}"),
        Some(Value::Decimal(None)) | None => "–".to_owned(),
    }
}

/// The national part of the page.
#[must_use]
pub fn section(l: Lang, n: &National) -> Markup {
    let t = &n.by_province;
    html! {
        h2 { (l.t("Laporan menurut provinsi (12 bulan)", "Reports by province (12 months)")) }
        (charts::bars("per-provinsi", l.t("Laporan menurut provinsi", "Reports by province"), &bars_of(t, "count")))
        @if let Some(k) = t.suppressed_below {
            p { (l.t("Angka di bawah ", "Counts below ")) (k) (l.t(" ditampilkan sebagai <", " are shown as <")) (k) (l.t("; angka yang dapat menyingkapnya lewat pengurangan dari jumlah ditampilkan sebagai x.", "; counts that would give them away by subtraction from a total are shown as x.")) }
        }
        h2 { (l.t("Tanggapan tepat waktu menurut provinsi", "Responses on time by province")) }
        (charts::bars("sla-provinsi", l.t("Persentase tanggapan tepat waktu", "Share of responses on time"), &bars_of(&n.sla_by_province, "responded_on_time_pct")))
        @if let Some((by_agency, flows, backlog)) = &n.officials {
            h2 { (l.t("Tanggapan tepat waktu menurut instansi", "Responses on time by agency")) }
            (charts::bars("sla-instansi", l.t("Persentase tanggapan tepat waktu per instansi", "Share of responses on time per agency"), &bars_of(by_agency, "responded_on_time_pct")))
            h2 { (l.t("Aliran antarprovinsi", "Flows between provinces")) }
            table #aliran {
                thead { tr {
                    th { (l.t("Asal", "Origin")) } th { (l.t("Penanganan", "Handler")) }
                    th { (l.t("Disposisi", "Dispatches")) } th { (l.t("Ditindaklanjuti", "Acted on")) }
                    th { (l.t("Dikembalikan", "Returned")) } th { (l.t("Median jam ke tindakan pertama", "Median hours to first action")) }
                } }
                tbody {
                    @for r in &flows.rows {
                        tr {
                            @for k in &r.keys { td { (k) } }
                            @for c in ["dispatches", "acted", "returns", "median_hours_to_first_action"] {
                                td { (cell(column(flows, c).and_then(|i| r.values.get(i)))) }
                            }
                        }
                    }
                }
            }
            h2 { (l.t("Laporan terbuka menurut umur", "Open reports by age")) }
            (charts::bars("umur", l.t("Laporan terbuka menurut umur", "Open reports by age"), &backlog.rows.first().map(|r| {
                backlog.columns.iter().zip(&r.values).map(|(c, v)| bar(age_label(l, c), Some(v))).collect::<Vec<_>>()
            }).unwrap_or_default()))
        }
    }
}

fn age_label(l: Lang, column: &str) -> String {
    match column {
        "age_0_3_days" => l.t("0–3 hari", "0–3 days").to_owned(),
        "age_4_7_days" => l.t("4–7 hari", "4–7 days").to_owned(),
        "age_8_14_days" => l.t("8–14 hari", "8–14 days").to_owned(),
        "age_15_30_days" => l.t("15–30 hari", "15–30 days").to_owned(),
        "age_31_60_days" => l.t("31–60 hari", "31–60 days").to_owned(),
        "age_61_90_days" => l.t("61–90 hari", "61–90 days").to_owned(),
        "age_over_90_days" => l.t("> 90 hari", "> 90 days").to_owned(),
        other => other.to_owned(),
    }
}

/// The audit state in words.
fn audit(l: Lang, a: &crate::hub::health::Audit) -> Markup {
    use crate::hub::health::Audit;
    html! {
        @match a {
            Audit::Ok => { (l.t("baik", "ok")) }
            Audit::Partial { missing } => { (l.t("sebagian", "partial")) " (" (missing) ")" }
            Audit::Gap { missing } => { strong { (l.t("CELAH", "GAP")) } " " (missing) (l.t(" peristiwa hilang", " event(s) missing")) }
            Audit::Equivocation { events } => { strong { (l.t("EKUIVOKASI", "EQUIVOCATION")) } " " code { (events.join(", ")) } }
        }
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

/// The federation's health at the hub: alerts, then one row per member node, with its outbox
/// towards each peer.
#[must_use]
pub fn health(l: Lang, site: &super::layout::Site, h: &crate::hub::watch::Health) -> Markup {
    html! {
        h2 { (l.t("Kesehatan federasi per node", "Federation health by node")) }
        @if h.alerts.is_empty() {
            p #peringatan { (l.t("Tidak ada peringatan.", "No alerts.")) }
        } @else {
            ul #peringatan {
                @for a in &h.alerts {
                    li { strong { (a.kind) } " " (a.node) ": " (a.detail) " (" (site.at_ms(l, a.since_ms)) ")" }
                }
            }
        }
        table #node-federasi {
            thead { tr {
                th { "Node" } th { (l.t("Kontak terakhir", "Last contact")) } th { (l.t("Versi", "Version")) }
                th { (l.t("Selisih jam (ms)", "Clock skew (ms)")) } th { (l.t("Kepala dilaporkan / dipegang", "Head reported / held")) }
                th { (l.t("Hilang di hub", "Missing at hub")) } th { (l.t("Karantina", "Quarantine")) }
                th { (l.t("Audit rantai", "Chain audit")) } th { (l.t("Antrean keluar", "Outbox")) }
            } }
            tbody {
                @for n in &h.nodes {
                    tr {
                        td { (n.node) }
                        td { (n.last_contact_ms.map_or_else(|| "–".to_owned(), |ms| site.at_ms(l, ms))) }
                        td { (n.version.as_deref().unwrap_or("–")) }
                        td { (opt(n.clock_skew_ms)) }
                        td { (opt(n.head_reported)) " / " (n.head_held) }
                        td { (opt(n.missing_at_hub)) }
                        td { (opt(n.quarantined)) }
                        td { (audit(l, &n.audit)) }
                        td {
                            @for o in &n.outbox {
                                (o.peer) ": " (o.depth)
                                @if let Some(a) = o.oldest_age_ms { " (" (a / 1000) " s)" }
                                br;
                            }
                        }
                    }
                }
            }
        }
    }
}
