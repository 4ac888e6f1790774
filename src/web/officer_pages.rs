//! Templates of the officers' pages: login, inbox (filters, search, paging, SLA badges) and
//! the ticket page (facts, reporter where allowed, forwarding, timeline with signer and
//! verified badge, and one form per allowed action).

use maud::{Markup, html};

use super::form::Fields;
use super::i18n::Lang;
use super::layout::{Site, notice};
use super::problem::Refusal;
use crate::domain::event::SlaStep;
use crate::domain::{Status, Timestamp};
use crate::tickets::agencies::AgencyInfo;
use crate::tickets::model::TicketRow;
use crate::tickets::{Detail, InboxPage};

/// The login form.
#[must_use]
pub fn login(
    l: Lang,
    csrf: &str,
    username: &str,
    refusal: Option<&Refusal>,
    info: Option<&str>,
) -> Markup {
    html! {
        @if let Some(i) = info { (notice(false, i)) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        form method="post" action="/petugas/masuk" {
            input type="hidden" name="csrf" value=(csrf);
            label for="username" { (l.t("Nama pengguna", "Username")) }
            input #username type="text" name="username" required autocomplete="username" value=(username);
            label for="password" { (l.t("Kata sandi", "Password")) }
            input #password type="password" name="password" required autocomplete="current-password";
            button type="submit" { (l.t("Masuk", "Log in")) }
        }
    }
}

/// How close a ticket is to its current deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// A deadline passed.
    Late,
    /// Due today (the node's calendar day).
    Today,
    /// Due within two days.
    Soon,
    /// Within its time.
    Fine,
    /// No running deadline.
    None,
}

/// The badge of `row` at `now`: the verification deadline in triage, the response deadline
/// while the agency works; late once that step's breach is recorded or its deadline passed.
#[must_use]
pub fn badge(row: &TicketRow, now: Timestamp, site: &Site) -> Badge {
    let Some(status) = Status::parse(&row.status) else {
        return Badge::None;
    };
    let (due, step) = if status.is_triage() {
        (Some(row.verify_due_ms), SlaStep::VerifyDispatch)
    } else if status.awaits_agency() {
        (row.response_due_ms, SlaStep::Response)
    } else {
        (None, SlaStep::Overall)
    };
    let Some(due) = due else { return Badge::None };
    let breached = row.breaches & i32::from(step.bit()) != 0;
    if due <= now.millis() || breached {
        Badge::Late
    } else if site.day(Timestamp::from_millis(due)) == site.day(now) {
        Badge::Today
    } else if due - now.millis() <= 2 * 86_400_000 {
        Badge::Soon
    } else {
        Badge::Fine
    }
}

fn badge_markup(l: Lang, b: Badge) -> Markup {
    let (class, id, en) = match b {
        Badge::Late => ("badge late", "Terlambat", "Overdue"),
        Badge::Today => ("badge today", "Jatuh tempo hari ini", "Due today"),
        Badge::Soon => ("badge soon", "Segera jatuh tempo", "Due soon"),
        Badge::Fine => ("badge fine", "Sesuai waktu", "On time"),
        Badge::None => return html! {},
    };
    html! { span class=(class) { (l.t(id, en)) } }
}

/// The inbox: filters, the page of tickets, the link to the next page.
#[must_use]
pub fn inbox(
    l: Lang,
    site: &Site,
    q: &Fields,
    agencies: &[AgencyInfo],
    page: &InboxPage,
    now: Timestamp,
    refusal: Option<&Refusal>,
) -> Markup {
    let sel = |name: &str, v: &str| q.raw(name) == Some(v);
    let next = page.next_cursor.as_ref().map(|c| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for name in ["status", "kind", "region", "agency", "q", "overdue"] {
            if let Some(v) = q.given(name) {
                s.append_pair(name, &v);
            }
        }
        s.append_pair("cursor", c);
        format!("/petugas?{}", s.finish())
    });
    html! {
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        form method="get" action="/petugas" {
            div.filters {
                div { label for="q" { (l.t("Cari", "Search")) } input #q type="search" name="q" value=(q.text("q")); }
                div { label for="status" { (l.t("Status", "Status")) }
                    select #status name="status" {
                        option value="" { (l.t("Semua", "All")) }
                        @for s in Status::ALL { option value=(s.as_str()) selected[sel("status", s.as_str())] { (l.status(s.as_str())) } }
                    }
                }
                div { label for="kind" { (l.t("Jenis", "Kind")) }
                    select #kind name="kind" {
                        option value="" { (l.t("Semua", "All")) }
                        @for k in super::citizen_pages::KINDS { option value=(k) selected[sel("kind", k)] { (l.kind(k)) } }
                    }
                }
                div { label for="region" { (l.t("Kode wilayah", "Region code")) } input #region type="text" name="region" value=(q.text("region")); }
                @if !agencies.is_empty() {
                    div { label for="agency" { (l.t("Instansi", "Agency")) }
                        select #agency name="agency" {
                            option value="" { (l.t("Semua", "All")) }
                            @for a in agencies { option value=(a.code) selected[sel("agency", &a.code)] { (a.code) } }
                        }
                    }
                }
                div { label.check { input type="checkbox" name="overdue" value="1" checked[q.ticked("overdue")]; (l.t("Hanya yang terlambat", "Overdue only")) } }
            }
            button type="submit" { (l.t("Terapkan", "Apply")) }
        }
        @if page.tickets.is_empty() {
            p { (l.t("Tidak ada tiket.", "No tickets.")) }
        } @else {
            table {
                thead { tr {
                    th { (l.t("Kode", "Code")) } th { (l.t("Judul", "Title")) } th { (l.t("Status", "Status")) }
                    th { (l.t("Batas waktu", "Deadline")) } th { (l.t("Diterima", "Filed")) }
                } }
                tbody {
                    @for t in &page.tickets {
                        tr {
                            td { a href=(format!("/petugas/tiket/{}", t.id)) { (t.tracking_code) } }
                            td { (t.title) }
                            td { (l.status(&t.status)) }
                            td { (badge_markup(l, badge(t, now, site))) }
                            td { (site.at_ms(l, t.created_at_ms)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) rel="next" { (l.t("Halaman berikutnya →", "Next page →")) } } }
    }
}

/// The ticket page.
#[must_use]
pub fn ticket(
    l: Lang,
    site: &Site,
    d: &Detail,
    agencies: &[AgencyInfo],
    csrf: &str,
    done: Option<&str>,
    refusal: Option<&Refusal>,
) -> Markup {
    let t = &d.ticket;
    html! {
        @if let Some(m) = done { (notice(true, m)) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        dl.facts {
            dt { (l.t("Kode pelacakan", "Tracking code")) } dd.code { (t.tracking_code) }
            dt { (l.t("Status", "Status")) } dd #status { (l.status(&t.status)) " " (badge_markup(l, badge(t, Timestamp::now(), site))) }
            dt { (l.t("Judul", "Title")) } dd { (t.title) }
            dt { (l.t("Jenis · kategori", "Kind · category")) } dd { (l.kind(&t.report_kind)) " · " (t.category) }
            dt { (l.t("Wilayah", "Region")) } dd { (t.region) }
            dt { (l.t("Instansi", "Agency")) } dd { (t.agency.as_deref().unwrap_or("–")) }
            @if let Some(s) = &d.suggested_agency { dt { (l.t("Usulan pelapor", "Citizen's suggestion")) } dd { (s.as_str()) } }
            dt { (l.t("Node asal", "Origin node")) } dd { (t.origin_node)
                @if t.origin_node != site.node { " — " span #forwarded-from { (l.t("diteruskan dari provinsi ", "forwarded from province ")) (t.tracking_code.chars().take(2).collect::<String>()) } } }
            dt { (l.t("Node penanganan", "Handling node")) } dd #handler { (t.handling_node)
                @if t.handling_node != site.node { " — " (l.t("diteruskan ke node lain", "forwarded to another node")) } }
            dt { (l.t("Privasi", "Privacy")) } dd {
                @if t.anonymous { (l.t("Anonim", "Anonymous")) " " }
                @if t.confidential { (l.t("Rahasia", "Confidential")) }
                @if !t.anonymous && !t.confidential { "–" }
            }
            dt { (l.t("Batas verifikasi", "Verification due")) } dd { (site.at_ms(l, t.verify_due_ms)) }
            @if let Some(ms) = t.response_due_ms { dt { (l.t("Batas tanggapan", "Response due")) } dd { (site.at_ms(l, ms)) } }
            dt { (l.t("Batas penyelesaian", "Completion due")) } dd { (site.at_ms(l, t.overall_due_ms)) }
        }
        h2 { (l.t("Pelapor", "Reporter")) }
        @match &d.reporter {
            Some(c) => dl.facts #pelapor {
                @if let Some(n) = &c.name { dt { (l.t("Nama", "Name")) } dd { (n) } }
                @if let Some(p) = &c.phone { dt { (l.t("Telepon", "Phone")) } dd { (p) } }
                @if let Some(e) = &c.email { dt { "E-mail" } dd { (e) } }
            },
            None => p #pelapor { (l.t("Identitas pelapor tidak ditampilkan (anonim, atau bukan wewenang Anda).",
                                      "The reporter's identity is not shown (anonymous, or not yours to see).")) },
        }
        h2 { (l.t("Isi laporan", "Report")) }
        p.pre { (t.body) }
        h2 { (l.t("Riwayat", "Timeline")) }
        ol.timeline #riwayat {
            @for s in &d.timeline {
                li {
                    strong { (l.action(s.kind)) } " · " (site.datetime(l, s.at)) " · " (l.role(s.role))
                    @if let Some(o) = &s.officer { " (" (o) ")" }
                    @if let Some(a) = &s.agency { " → " (a.as_str()) }
                    br;
                    small { (l.t("Ditandatangani ", "Signed by ")) (s.node) " " }
                    @if s.verified { span.badge.verified { (l.t("terverifikasi", "verified")) } }
                    @else { span.badge.unverified { (l.t("belum terverifikasi", "not verified")) } }
                    @if let Some(m) = &s.message { p.pre { (m) } }
                }
            }
        }
        section.actions {
            h2 { (l.t("Tindakan", "Actions")) }
            @if d.allowed_actions.is_empty() { p { (l.t("Tidak ada tindakan yang dapat Anda lakukan sekarang.", "No action you can take now.")) } }
            @for a in &d.allowed_actions { (action_form(l, &t.id, a, agencies, csrf)) }
        }
    }
}

fn action_form(l: Lang, id: &str, action: &str, agencies: &[AgencyInfo], csrf: &str) -> Markup {
    let field = format!("f-{action}");
    html! {
        form method="post" action=(format!("/petugas/tiket/{id}")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            @match action {
                "dispatch" => {
                    label for=(field) { (l.t("Instansi (node pemilik)", "Agency (owning node)")) }
                    select id=(field) name="agency" {
                        @for a in agencies.iter().filter(|a| a.dispatchable()) {
                            option value=(a.code) { (a.name) " — " (a.owner_node) }
                        }
                    }
                },
                "archive" => {
                    label for=(field) { (l.t("Alasan", "Reason")) }
                    select id=(field) name="reason" {
                        option value="spam" { (l.t("Spam", "Spam")) }
                        option value="unclear" { (l.t("Tidak jelas", "Unclear")) }
                        option value="out_of_scope" { (l.t("Di luar cakupan", "Out of scope")) }
                        option value="duplicate" { (l.t("Duplikat", "Duplicate")) }
                    }
                },
                "postpone" | "not_our_authority" => {
                    label for=(field) { (l.t("Catatan", "Note")) }
                    textarea id=(field) name="note" required {}
                },
                "respond" | "resolve" => {
                    label for=(field) { (l.t("Pesan untuk pelapor", "Message to the citizen")) }
                    textarea id=(field) name="message" required {}
                },
                _ => {}
            }
            button type="submit" name="go" value=(action) { (l.action(action)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            node: "prov-31.lapor.test".into(),
            province: "DKI Jakarta".into(),
            zone: "WIB".into(),
            offset: time::UtcOffset::from_hms(7, 0, 0).unwrap(),
        }
    }

    fn row(status: &str, verify_due: i64, response_due: Option<i64>, breaches: i32) -> TicketRow {
        TicketRow {
            id: String::new(),
            tracking_code: String::new(),
            origin_node: String::new(),
            handling_node: String::new(),
            report_kind: String::new(),
            category: String::new(),
            title: String::new(),
            body: String::new(),
            region: String::new(),
            agency: None,
            channel: String::new(),
            anonymous: false,
            confidential: false,
            status: status.into(),
            archive_reason: None,
            rating: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            verify_due_ms: verify_due,
            response_due_ms: response_due,
            auto_close_due_ms: None,
            reopen_until_ms: None,
            overall_due_ms: 0,
            breaches,
            head: String::new(),
            event_count: 0,
            state: String::new(),
            code_number: None,
            next_due_ms: None,
        }
    }

    #[test]
    fn badges_follow_the_current_step_in_the_node_day() {
        // Monday 2026-11-30 09:00 WIB.
        let now = Timestamp::parse("2026-11-30T02:00:00.000Z").unwrap();
        let h = 3_600_000;
        let s = site();
        assert_eq!(
            badge(&row("submitted", now.millis() - h, None, 0), now, &s),
            Badge::Late
        );
        // 23:00 WIB the same day: due today.
        assert_eq!(
            badge(&row("submitted", now.millis() + 14 * h, None, 0), now, &s),
            Badge::Today
        );
        assert_eq!(
            badge(&row("verified", now.millis() + 30 * h, None, 0), now, &s),
            Badge::Soon
        );
        assert_eq!(
            badge(&row("submitted", now.millis() + 100 * h, None, 0), now, &s),
            Badge::Fine
        );
        // A late verification does not make the agency's running response late.
        let late_verify = i32::from(SlaStep::VerifyDispatch.bit());
        assert_eq!(
            badge(
                &row("dispatched", 0, Some(now.millis() + 100 * h), late_verify),
                now,
                &s
            ),
            Badge::Fine
        );
        let late_response = i32::from(SlaStep::Response.bit());
        assert_eq!(
            badge(
                &row(
                    "in_progress",
                    0,
                    Some(now.millis() + 100 * h),
                    late_response
                ),
                now,
                &s
            ),
            Badge::Late
        );
        assert_eq!(badge(&row("closed", 0, None, 0), now, &s), Badge::None);
    }
}
