//! Templates of the citizen's pages: the report form, the receipt, the tracking page with its
//! follow-up forms. They render what `web::citizen` hands them and decide nothing.

use maud::{Markup, html};

use super::form::Fields;
use super::i18n::Lang;
use super::layout::{Site, notice};
use super::problem::Refusal;
use crate::domain::visibility::Audience;
use crate::tickets::ReportView;
use crate::tickets::agencies::AgencyInfo;

/// Report kinds, as the form offers them.
pub const KINDS: [&str; 3] = ["pengaduan", "aspirasi", "permintaan_informasi"];

/// Categories the form offers (slugs; the tickets wing accepts any well-formed slug).
pub const CATEGORIES: [(&str, &str, &str); 10] = [
    (
        "infrastruktur",
        "Infrastruktur dan jalan",
        "Infrastructure and roads",
    ),
    ("kesehatan", "Kesehatan", "Health"),
    ("pendidikan", "Pendidikan", "Education"),
    (
        "kependudukan",
        "Kependudukan (KTP, KK, akta)",
        "Civil registration (ID, family card)",
    ),
    ("transportasi", "Transportasi", "Transport"),
    ("lingkungan", "Lingkungan hidup", "Environment"),
    ("sosial", "Bantuan sosial", "Social assistance"),
    ("ketenagakerjaan", "Ketenagakerjaan", "Employment"),
    (
        "pelayanan_publik",
        "Pelayanan publik lainnya",
        "Other public services",
    ),
    ("lainnya", "Lainnya", "Other"),
];

/// The message under a field, when the refusal names it.
fn field_error(refusal: Option<&Refusal>, field: &str) -> Markup {
    html! {
        @if let Some(r) = refusal.filter(|r| r.field.is_some_and(|f| f == field || f.starts_with(&format!("{field}.")))) {
            span.field-err { (r.message) }
        }
    }
}

/// The report form (with the values already typed, and the refusal, after a refused attempt).
#[must_use]
pub fn report_form(
    l: Lang,
    regions: &[(String, String)],
    agencies: &[AgencyInfo],
    f: &Fields,
    refusal: Option<&Refusal>,
) -> Markup {
    let sel = |name: &str, v: &str| f.raw(name) == Some(v);
    html! {
        p { (l.t("Sampaikan pengaduan, aspirasi atau permintaan informasi tentang pelayanan publik. \
                  Setelah mengirim, Anda menerima kode pelacakan dan token tindak lanjut.",
                 "Report a complaint, a suggestion or an information request about a public service. \
                  After sending you receive a tracking code and a follow-up token.")) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        form method="post" action="/lapor" {
            label for="kind" { (l.t("Jenis laporan", "Kind of report")) }
            select #kind name="kind" {
                @for k in KINDS { option value=(k) selected[sel("kind", k)] { (l.kind(k)) } }
            }
            label for="title" { (l.t("Judul", "Title")) }
            input #title type="text" name="title" maxlength="200" required value=(f.text("title"));
            (field_error(refusal, "title"))
            label for="body" { (l.t("Isi laporan", "What happened"))
                span.hint { (l.t("Apa, di mana, kapan. Jangan tulis data pribadi orang lain.",
                                 "What, where, when. Do not write other people's personal data.")) } }
            textarea #body name="body" required { (f.text("body")) }
            (field_error(refusal, "body"))
            label for="category" { (l.t("Kategori", "Category")) }
            select #category name="category" {
                @for (slug, id, en) in CATEGORIES { option value=(slug) selected[sel("category", slug)] { (l.t(id, en)) } }
            }
            label for="region" { (l.t("Wilayah", "Region")) }
            select #region name="region" {
                @for (code, name) in regions { option value=(code) selected[sel("region", code)] { (name) } }
            }
            (field_error(refusal, "region"))
            label for="agency" { (l.t("Instansi yang dituju", "Agency concerned"))
                span.hint { (l.t("Pilih \u{201c}Tidak tahu\u{201d} jika ragu: verifikator akan menentukannya.",
                                 "Pick \u{201c}Not sure\u{201d} if in doubt: a verifier will decide.")) } }
            select #agency name="agency" {
                option value="" { (l.t("Tidak tahu", "Not sure")) }
                @for a in agencies.iter().filter(|a| a.dispatchable()) {
                    option value=(a.code) selected[sel("agency", &a.code)] { (a.name) }
                }
            }
            (field_error(refusal, "agency"))
            fieldset {
                legend { (l.t("Kerahasiaan", "Privacy")) }
                label.check {
                    input type="checkbox" name="anonim" checked[f.ticked("anonim")];
                    span { strong { (l.t("Anonim", "Anonymous")) } " — "
                        (l.t("nama dan kontak Anda tidak ditampilkan kepada siapa pun, termasuk instansi yang dituju. \
                              Isi laporan tetap dapat dibaca publik.",
                             "your name and contact are shown to nobody, not even the agency concerned. \
                              The report itself can still be read by the public.")) }
                }
                label.check {
                    input type="checkbox" name="rahasia" checked[f.ticked("rahasia")];
                    span { strong { (l.t("Rahasia", "Confidential")) } " — "
                        (l.t("isi laporan tidak dapat dibaca publik; hanya Anda (dengan token) dan petugas yang menanganinya.",
                             "the report is not public; only you (with the token) and the officers handling it can read it.")) }
                }
            }
            fieldset {
                legend { (l.t("Kontak (tidak wajib jika anonim)", "Contact (optional when anonymous)")) }
                label for="name" { (l.t("Nama", "Name")) }
                input #name type="text" name="name" maxlength="200" autocomplete="name" value=(f.text("name"));
                (field_error(refusal, "contact.name"))
                label for="phone" { (l.t("Nomor telepon", "Phone number")) }
                input #phone type="tel" name="phone" maxlength="32" autocomplete="tel" value=(f.text("phone"));
                (field_error(refusal, "contact.phone"))
                label for="email" { "E-mail" }
                input #email type="email" name="email" maxlength="254" autocomplete="email" value=(f.text("email"));
                (field_error(refusal, "contact.email"))
                (field_error(refusal, "reporter"))
            }
            button type="submit" { (l.t("Kirim laporan", "Send report")) }
        }
    }
}

/// The receipt: tracking code and follow-up token, how to keep them, deadlines.
#[must_use]
pub fn receipt(l: Lang, site: &Site, code: &str, token: &str, verify_due: &str) -> Markup {
    html! {
        (notice(true, l.t("Laporan Anda telah diterima.", "Your report has been received.")))
        div.receipt {
            p { (l.t("Kode pelacakan", "Tracking code")) }
            p.code #kode { (code) }
            p { (l.t("Token tindak lanjut", "Follow-up token")) }
            p.code #token { (token) }
            p { (l.t("Batas verifikasi: ", "Verification due: ")) (verify_due) }
            p { (site.node) }
        }
        h2 { (l.t("Simpan kedua kode ini", "Keep both codes")) }
        ul {
            li { (l.t("Kode pelacakan untuk melihat status laporan. Boleh dibagikan.",
                      "The tracking code shows the report's status. You may share it.")) }
            li { (l.t("Token tindak lanjut untuk membalas, menilai atau membuka kembali laporan, dan untuk membaca laporan rahasia. \
                       Jangan bagikan token ini. Token tidak dapat ditampilkan lagi.",
                      "The follow-up token lets you reply, rate or reopen, and read a confidential report. \
                       Do not share it. It cannot be shown again.")) }
            li { (l.t("Cetak halaman ini atau catat kedua kode di tempat aman.",
                      "Print this page or write both codes down somewhere safe.")) }
        }
        p.noprint { a href=(format!("/lacak?kode={}", url_part(code))) { (l.t("Lihat status laporan", "See the report's status")) } }
    }
}

fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The form to look a report up by tracking code (and token).
#[must_use]
pub fn lookup_form(l: Lang, code: &str, refusal: Option<&Refusal>) -> Markup {
    html! {
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        form method="get" action="/lacak" {
            label for="kode" { (l.t("Kode pelacakan", "Tracking code")) }
            input #kode type="text" name="kode" required value=(code);
            button type="submit" { (l.t("Lihat status", "See status")) }
        }
        form method="post" action="/lacak/lihat" {
            h2 { (l.t("Dengan token tindak lanjut", "With the follow-up token")) }
            p.hint { (l.t("Untuk laporan rahasia, dan untuk membalas, menilai atau membuka kembali.",
                          "For confidential reports, and to reply, rate or reopen.")) }
            label for="kode2" { (l.t("Kode pelacakan", "Tracking code")) }
            input #kode2 type="text" name="kode" required value=(code);
            label for="token" { (l.t("Token tindak lanjut", "Follow-up token")) }
            input #token type="password" name="token" required autocomplete="off";
            button type="submit" { (l.t("Buka laporan saya", "Open my report")) }
        }
    }
}

/// The report as the public or its citizen sees it; with the token, the follow-up forms.
#[must_use]
pub fn report(
    l: Lang,
    site: &Site,
    view: &ReportView,
    audience: Audience,
    token: Option<&str>,
    done: Option<&str>,
    refusal: Option<&Refusal>,
) -> Markup {
    let t = &view.ticket;
    html! {
        @if let Some(d) = done { (notice(true, d)) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        dl.facts {
            dt { (l.t("Kode pelacakan", "Tracking code")) } dd.code { (t.tracking_code) }
            dt { (l.t("Status", "Status")) } dd #status { (l.status(&t.status)) }
            dt { (l.t("Judul", "Title")) } dd { (t.title) }
            dt { (l.t("Jenis", "Kind")) } dd { (l.kind(&t.report_kind)) }
            dt { (l.t("Diterima", "Filed")) } dd { (site.at_ms(l, t.created_at_ms)) }
            dt { (l.t("Batas verifikasi", "Verification due")) } dd { (site.at_ms(l, t.verify_due_ms)) }
            @if let Some(ms) = t.response_due_ms {
                dt { (l.t("Batas tanggapan instansi", "Agency response due")) } dd { (site.at_ms(l, ms)) }
            }
            @if let Some(ms) = t.auto_close_due_ms {
                dt { (l.t("Ditutup otomatis", "Closes automatically")) } dd { (site.at_ms(l, ms)) }
            }
            dt { (l.t("Batas penyelesaian", "Completion due")) } dd { (site.at_ms(l, t.overall_due_ms)) }
            @if let Some(a) = &t.agency { dt { (l.t("Instansi", "Agency")) } dd { (a) } }
        }
        h2 { (l.t("Isi laporan", "Report")) }
        p.pre { (t.body) }
        h2 { (l.t("Riwayat", "Timeline")) }
        ol.timeline #riwayat {
            @for s in &view.timeline {
                li {
                    strong { (l.action(s.kind)) } " · " (site.datetime(l, s.at))
                    @if let Some(a) = &s.agency { " · " (a.as_str()) }
                    @if let Some(m) = &s.message { p.pre { (m) } }
                }
            }
        }
        @if let (Audience::Citizen, Some(token)) = (audience, token) {
            (follow_up_forms(l, &t.tracking_code, token))
        }
    }
}

fn follow_up_forms(l: Lang, code: &str, token: &str) -> Markup {
    html! {
        section.actions {
            h2 { (l.t("Tindak lanjut", "Follow up")) }
            form method="post" action="/lacak/balas" {
                input type="hidden" name="kode" value=(code);
                input type="hidden" name="token" value=(token);
                label for="balas" { (l.t("Balas tanggapan", "Reply to the response")) }
                textarea #balas name="message" required {}
                button type="submit" { (l.t("Kirim balasan", "Send reply")) }
            }
            form method="post" action="/lacak/nilai" {
                input type="hidden" name="kode" value=(code);
                input type="hidden" name="token" value=(token);
                label for="nilai" { (l.t("Nilai penyelesaian (1–5)", "Rate the outcome (1–5)")) }
                select #nilai name="rating" {
                    @for n in 1..=5 { option value=(n) { (n) } }
                }
                button type="submit" { (l.t("Kirim nilai", "Send rating")) }
            }
            form method="post" action="/lacak/buka" {
                input type="hidden" name="kode" value=(code);
                input type="hidden" name="token" value=(token);
                label for="buka" { (l.t("Buka kembali (jika belum tuntas)", "Reopen (if not solved)")) }
                textarea #buka name="message" required {}
                button.second type="submit" { (l.t("Buka kembali", "Reopen")) }
            }
        }
    }
}
