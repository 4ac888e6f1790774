//! The console's two languages: Bahasa Indonesia (the default) and English. The language of a
//! request is the `lapor_bahasa` cookie (set by the switch link), else the first of `id`/`en`
//! in `Accept-Language`, else Indonesian. Texts sit beside their use as `lang.t(id, en)`
//! pairs; the names of statuses, kinds, roles and actions, and the refusals of the tickets
//! wing, are translated here.

use actix_web::HttpRequest;

use crate::domain::Role;
use crate::tickets::{OutOfScope, Problem, Unavailability};

/// The cookie the language switch sets.
pub const COOKIE: &str = "lapor_bahasa";

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Bahasa Indonesia.
    #[default]
    Id,
    /// English.
    En,
}

impl Lang {
    /// The language of `req` (cookie, then `Accept-Language`, then Indonesian).
    #[must_use]
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(l) = req.cookie(COOKIE).and_then(|c| Self::parse(c.value())) {
            return l;
        }
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::from_accept_language)
            .unwrap_or_default()
    }

    /// `id` or `en`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "id" => Some(Self::Id),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The first of Indonesian or English in an `Accept-Language` value, by preference
    /// (`q`), ties in the order given.
    #[must_use]
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(u16, Self)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, parse_q);
            let primary = tag.split('-').next().unwrap_or_default();
            let lang = match primary {
                "id" | "in" => Self::Id,
                "en" => Self::En,
                _ => continue,
            };
            if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// `id` or `en`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::En => "en",
        }
    }

    /// The other language (for the switch link).
    #[must_use]
    pub const fn other(self) -> Self {
        match self {
            Self::Id => Self::En,
            Self::En => Self::Id,
        }
    }

    /// The text in this language.
    #[must_use]
    pub const fn t(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Id => id,
            Self::En => en,
        }
    }

    /// A status's name.
    #[must_use]
    pub fn status(self, status: &str) -> &'static str {
        let (id, en) = match status {
            "submitted" => ("Belum diverifikasi", "Submitted"),
            "verified" => ("Terverifikasi", "Verified"),
            "dispatched" => ("Diteruskan ke instansi", "Dispatched"),
            "in_progress" => ("Sedang diproses", "In progress"),
            "responded" => ("Ditanggapi", "Responded"),
            "resolved" => ("Selesai", "Resolved"),
            "closed" => ("Ditutup", "Closed"),
            "postponed" => ("Ditunda", "Postponed"),
            "archived" => ("Diarsipkan", "Archived"),
            "not_our_authority" => ("Bukan wewenang", "Not our authority"),
            "reopened" => ("Dibuka kembali", "Reopened"),
            _ => ("Tidak dikenal", "Unknown"),
        };
        self.t(id, en)
    }

    /// A report kind's name.
    #[must_use]
    pub fn kind(self, kind: &str) -> &'static str {
        let (id, en) = match kind {
            "pengaduan" => ("Pengaduan", "Complaint"),
            "aspirasi" => ("Aspirasi", "Suggestion"),
            "permintaan_informasi" => ("Permintaan informasi", "Information request"),
            _ => ("Lainnya", "Other"),
        };
        self.t(id, en)
    }

    /// A role's name.
    #[must_use]
    pub const fn role(self, role: Role) -> &'static str {
        match role {
            Role::Citizen => self.t("Pelapor", "Citizen"),
            Role::Verifier => self.t("Verifikator", "Verifier"),
            Role::Liaison => self.t("Pejabat penghubung", "Liaison officer"),
            Role::Admin => self.t("Admin", "Admin"),
            Role::Analyst => self.t("Analis", "Analyst"),
            Role::System => self.t("Sistem", "System"),
        }
    }

    /// An action's (or event kind's) name.
    #[must_use]
    pub fn action(self, action: &str) -> &'static str {
        let (id, en) = match action {
            "created" => ("Laporan diterima", "Report filed"),
            "verify" | "verified" => ("Verifikasi", "Verify"),
            "dispatch" | "dispatched" => ("Teruskan ke instansi", "Dispatch to agency"),
            "postpone" | "postponed" => ("Tunda", "Postpone"),
            "archive" | "archived" => ("Arsipkan", "Archive"),
            "not_our_authority" => ("Bukan wewenang", "Not our authority"),
            "start" | "started" => ("Mulai proses", "Start work"),
            "respond" | "responded" => ("Tanggapi", "Respond"),
            "resolve" | "resolved" => ("Selesaikan", "Resolve"),
            "reply" | "citizen_replied" => ("Balasan pelapor", "Citizen reply"),
            "rate" | "rated" => ("Penilaian", "Rating"),
            "reopen" | "reopened" => ("Buka kembali", "Reopen"),
            "closed" => ("Ditutup", "Closed"),
            "sla_breached" => ("Batas waktu terlewati", "Deadline missed"),
            "erased" => ("Data pribadi dihapus", "Personal data erased"),
            _ => ("Perubahan", "Change"),
        };
        self.t(id, en)
    }

    /// A field's name, as a form labels it.
    #[must_use]
    pub fn field(self, field: &str) -> &'static str {
        let (id, en) = match field {
            "title" => ("Judul", "Title"),
            "body" => ("Isi laporan", "Report text"),
            "contact.name" => ("Nama", "Name"),
            "contact.phone" => ("Nomor telepon", "Phone number"),
            "contact.email" => ("E-mail", "E-mail"),
            "reporter" => ("Identitas pelapor", "Reporter"),
            "note" => ("Catatan", "Note"),
            "message" => ("Pesan", "Message"),
            "rating" => ("Nilai", "Rating"),
            "region" => ("Wilayah", "Region"),
            "agency" => ("Instansi", "Agency"),
            "kind" => ("Jenis", "Kind"),
            "category" => ("Kategori", "Category"),
            "status" => ("Status", "Status"),
            "limit" => ("Jumlah per halaman", "Page size"),
            "cursor" => ("Halaman", "Page"),
            "username" => ("Nama pengguna", "Username"),
            "password" => ("Kata sandi", "Password"),
            "role" => ("Peran", "Role"),
            "reason" => ("Alasan", "Reason"),
            "code" => ("Kode pelacakan", "Tracking code"),
            "token" => ("Token tindak lanjut", "Follow-up token"),
            _ => ("Isian", "Field"),
        };
        self.t(id, en)
    }

    /// What is wrong with a field, in this language.
    #[must_use]
    pub fn problem(self, problem: &Problem) -> String {
        match (self, problem) {
            (Self::Id, Problem::Empty) => "wajib diisi".into(),
            (Self::En, Problem::Empty) => "must not be empty".into(),
            (Self::Id, Problem::TooLong { len, max }) => {
                format!("terlalu panjang: {len} karakter, batasnya {max}")
            }
            (Self::En, Problem::TooLong { len, max }) => {
                format!("is {len} characters; the limit is {max}")
            }
            (Self::Id, Problem::Length { max }) => format!("harus 1 sampai {max} karakter"),
            (Self::Id, Problem::Control { at, .. }) => {
                format!("berisi karakter kendali pada karakter ke-{at}")
            }
            (Self::Id, Problem::NotPhone) => "harus berupa angka, boleh diawali tanda +".into(),
            (Self::Id, Problem::NotEmail) => "bukan alamat e-mail".into(),
            (Self::Id, Problem::NoReporter) => "laporan yang tidak anonim perlu nama, nomor \
                 telepon atau e-mail pelapor; isi salah satu, atau pilih anonim"
                .into(),
            (Self::Id, Problem::OutOfRange { min, max }) => {
                format!("harus antara {min} dan {max}")
            }
            (Self::Id, Problem::Unknown { value, .. }) => format!("tidak dikenal: {value}"),
            (Self::Id, Problem::NotACursor) => "bukan penanda halaman yang sah".into(),
            (Self::Id, Problem::Malformed(_)) => "formatnya salah".into(),
            (Self::En, p) => p.to_string(),
        }
    }

    /// Why an agency takes no dispatch now.
    #[must_use]
    pub fn unavailable(self, why: &Unavailability) -> String {
        match (self, why) {
            (Self::Id, Unavailability::Disabled) => {
                "dinonaktifkan di node ini; pilih instansi lain".into()
            }
            (Self::Id, Unavailability::NotAMember { owner }) => {
                format!("ditangani node {owner}, yang bukan anggota federasi node ini")
            }
            (Self::Id, Unavailability::DroppedByRoster { version }) => format!(
                "tidak lagi tercantum dalam daftar anggota federasi (dihapus pada versi \
                 {version}); pilih instansi lain"
            ),
            (Self::En, w) => w.to_string(),
        }
    }

    /// Where a liaison reached outside their agency.
    #[must_use]
    pub const fn out_of_scope(self, s: OutOfScope) -> &'static str {
        match s {
            OutOfScope::OtherAgencyList => self.t(
                "Pejabat penghubung hanya dapat melihat tiket instansinya sendiri.",
                "A liaison officer may only list their own agency's tickets.",
            ),
            OutOfScope::OtherAgencyTicket => self.t(
                "Tiket ini tidak diteruskan ke instansi Anda.",
                "This ticket is not dispatched to your agency.",
            ),
        }
    }
}

/// `q=0.8` as thousandths (unparsable: 0, so the entry is ignored).
fn parse_q(s: &str) -> u16 {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let digits: String = frac.chars().take(3).collect();
    let frac_val = format!("{digits:0<3}").parse::<u16>().unwrap_or(0);
    (int + frac_val).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_the_two() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr, en;q=0.5, id;q=0.8"),
            Some(Lang::Id)
        );
        assert_eq!(Lang::from_accept_language("id-ID"), Some(Lang::Id));
        assert_eq!(Lang::from_accept_language("de, fr;q=0.7"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0, id;q=0.1"),
            Some(Lang::Id)
        );
    }
}
