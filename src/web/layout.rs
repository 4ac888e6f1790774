//! The page shell every console page shares (head, header with the language switch, footer),
//! the node's clock (dates in its province's WIB/WITA/WIT), and small pieces of markup used
//! by several pages. `maud` escapes every interpolated value; nothing here opts out of it
//! except the constant style sheet link.

use maud::{DOCTYPE, Markup, html};
use time::UtcOffset;

use super::i18n::Lang;
use crate::domain::Timestamp;

/// The node's place and clock, for every page.
#[derive(Debug, Clone)]
pub struct Site {
    /// Node id.
    pub node: String,
    /// Province name.
    pub province: String,
    /// `WIB`, `WITA` or `WIT`.
    pub zone: String,
    /// The zone's offset.
    pub offset: UtcOffset,
}

impl Site {
    /// A date and time in the node's zone: `7 Des 2026 09.30 WITA` (`7 Dec 2026 09:30 WITA`).
    #[must_use]
    pub fn datetime(&self, lang: Lang, t: Timestamp) -> String {
        let d = t.to_datetime().to_offset(self.offset);
        let month = month_name(lang, u8::from(d.month()));
        let sep = lang.t(".", ":");
        format!(
            "{} {month} {} {:02}{sep}{:02} {}",
            d.day(),
            d.year(),
            d.hour(),
            d.minute(),
            self.zone
        )
    }

    /// A date and time from stored milliseconds.
    #[must_use]
    pub fn at_ms(&self, lang: Lang, ms: i64) -> String {
        self.datetime(lang, Timestamp::from_millis(ms))
    }

    /// The calendar day of `t` in the node's zone (`(year, ordinal day)`).
    #[must_use]
    pub fn day(&self, t: Timestamp) -> (i32, u16) {
        let d = t.to_datetime().to_offset(self.offset);
        (d.year(), d.ordinal())
    }
}

fn month_name(lang: Lang, m: u8) -> &'static str {
    const ID: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
    ];
    const EN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = usize::from(m.clamp(1, 12) - 1);
    match lang {
        Lang::Id => ID[i],
        Lang::En => EN[i],
    }
}

/// What the header shows of the officer signed in.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Account name.
    pub username: String,
    /// The role's name, translated.
    pub role: &'static str,
    /// The CSRF token for the logout form.
    pub csrf: String,
    /// Shows the admin links.
    pub admin: bool,
}

/// One page: its language, the path (for the language switch), title and officer.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// Language.
    pub lang: Lang,
    /// The request's path and query, to come back to after switching language.
    pub back: String,
    /// The node.
    pub site: &'a Site,
    /// Signed-in officer, on officer pages.
    pub signed: Option<Signed>,
}

impl Page<'_> {
    /// The whole document around `body`.
    #[must_use]
    pub fn render(&self, title: &str, body: &Markup) -> Markup {
        let l = self.lang;
        let other = l.other();
        let switch = format!(
            "/bahasa?ke={}&kembali={}",
            other.code(),
            url::form_urlencoded::byte_serialize(self.back.as_bytes()).collect::<String>()
        );
        html! {
            (DOCTYPE)
            html lang=(l.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · LAPOR! " (self.site.province) }
                    link rel="stylesheet" href=(super::assets::CSS_PATH);
                }
                body {
                    a.skip href="#isi" { (l.t("Langsung ke isi", "Skip to content")) }
                    header.top {
                        a.brand href="/" { "LAPOR! " span { (self.site.province) } }
                        nav aria-label=(l.t("Navigasi", "Navigation")) {
                            a href="/" { (l.t("Buat laporan", "File a report")) }
                            a href="/lacak" { (l.t("Lacak laporan", "Track a report")) }
                            a href="/petugas" { (l.t("Petugas", "Officers")) }
                            a href="/nasional" { (l.t("Statistik", "Statistics")) }
                            @if self.signed.as_ref().is_some_and(|s| s.admin) {
                                a href="/petugas/admin" { (l.t("Akun petugas", "Officer accounts")) }
                                a href="/petugas/federasi" { (l.t("Federasi", "Federation")) }
                            }
                            a href=(switch) lang=(other.code()) hreflang=(other.code()) {
                                (l.t("English", "Bahasa Indonesia"))
                            }
                        }
                        @if let Some(s) = &self.signed {
                            form.signed method="post" action="/petugas/keluar" {
                                span { (s.username) " · " (s.role) }
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { (l.t("Keluar", "Log out")) }
                            }
                        }
                    }
                    main #isi { h1 { (title) } (body) }
                    footer {
                        (l.t("Waktu ditampilkan dalam ", "Times shown in "))
                        (self.site.zone) " · " (self.site.node)
                    }
                }
            }
        }
    }
}

/// A notice box: `ok` for success, otherwise an error (with `role="alert"`).
#[must_use]
pub fn notice(ok: bool, text: &str) -> Markup {
    html! {
        @if ok { p.ok role="status" { (text) } } @else { p.err role="alert" { (text) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_in_the_node_zone_and_language() {
        let site = Site {
            node: "prov-53.lapor.test".into(),
            province: "Nusa Tenggara Timur".into(),
            zone: "WITA".into(),
            offset: UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC),
        };
        let t = Timestamp::parse("2026-12-06T23:05:00.000Z").unwrap_or(Timestamp::from_millis(0));
        assert_eq!(site.datetime(Lang::Id, t), "7 Des 2026 07.05 WITA");
        assert_eq!(site.datetime(Lang::En, t), "7 Dec 2026 07:05 WITA");
    }
}
