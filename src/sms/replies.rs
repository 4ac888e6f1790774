//! Everything the node says by SMS, in Bahasa Indonesia: answers to a citizen's message
//! ([`Reply`]) and status notifications ([`Notice`]). Every text is GSM-7 ([`super::gsm`]); a
//! short answer fits one message of 160 characters, and only the texts that quote an agency's
//! answer may run to [`MAX_PARTS`] parts.

use super::gsm;
use crate::domain::{Status, TrackingCode};

/// The most parts a notification quoting an agency's answer may take.
pub const MAX_PARTS: usize = 3;

/// An answer to a citizen's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `BANTUAN`.
    Help,
    /// Nothing recognised.
    Unknown,
    /// `LAPOR` without text.
    EmptyReport,
    /// A keyword that needs a tracking code got none that reads as one.
    NoCode {
        /// The keyword, as the citizen should type it.
        keyword: &'static str,
    },
    /// `BALAS` without text.
    EmptyReply(TrackingCode),
    /// `NILAI` without a rating from 1 to 5.
    BadRating(TrackingCode),
    /// `CEK`: the status, and the deadline of the step awaited (local date).
    Status {
        /// The report.
        code: TrackingCode,
        /// Its status.
        status: Status,
        /// `DD-MM-YYYY`.
        due: Option<String>,
    },
    /// No report with this code was filed from this number (or it is not filed here).
    NotFound(TrackingCode),
    /// The reply was recorded.
    Replied(TrackingCode),
    /// The rating was recorded.
    Rated(TrackingCode, u8),
    /// The action does not fit the report's status now.
    NotNow(TrackingCode, Status),
    /// The message (or the report) is longer than the node takes.
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A region code given with `@` is not known.
    UnknownRegion,
    /// The report could not be filed or the action taken for a fault of the node: try later.
    TryLater,
}

/// A status notification about a report filed by SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Filed: the tracking code (tags that were not understood are named).
    Filed {
        /// The report.
        code: TrackingCode,
        /// Tags not understood.
        ignored: Vec<String>,
    },
    /// Verified.
    Verified(TrackingCode),
    /// Dispatched to an agency of this province.
    Dispatched(TrackingCode, String),
    /// Forwarded to another province's node (or the national hub).
    Forwarded(TrackingCode, String),
    /// The agency answered (its answer quoted).
    Responded(TrackingCode, String),
    /// Resolved (the closing remarks quoted).
    Resolved(TrackingCode, String),
    /// Closed.
    Closed(TrackingCode),
    /// Archived (not followed up).
    Archived(TrackingCode),
}

impl Notice {
    /// The notice's kind, as stored with its outbox row.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Filed { .. } => "filed",
            Self::Verified(_) => "verified",
            Self::Dispatched(..) => "dispatched",
            Self::Forwarded(..) => "forwarded",
            Self::Responded(..) => "responded",
            Self::Resolved(..) => "resolved",
            Self::Closed(_) => "closed",
            Self::Archived(_) => "archived",
        }
    }
}

/// A status in words.
#[must_use]
pub const fn status_words(s: Status) -> &'static str {
    match s {
        Status::Submitted => "diterima, menunggu verifikasi",
        Status::Verified => "sudah diverifikasi",
        Status::Dispatched => "diteruskan ke instansi",
        Status::InProgress => "sedang ditindaklanjuti",
        Status::Responded => "sudah ditanggapi instansi",
        Status::Resolved => "selesai",
        Status::Closed => "ditutup",
        Status::Postponed => "ditunda",
        Status::Archived => "diarsipkan",
        Status::NotOurAuthority => "dialihkan ke instansi lain",
        Status::Reopened => "dibuka kembali",
    }
}

const HELP: &str = "LAPOR! 1708: LAPOR isi laporan (#kategori @kodewilayah) | CEK kode | \
BALAS kode isi | NILAI kode 1-5. Laporan SMS anonim kecuali ditulis #terbuka.";

impl Reply {
    /// The answer's text (GSM-7, one message).
    #[must_use]
    pub fn text(&self) -> String {
        let t = match self {
            Self::Help => HELP.to_owned(),
            Self::Unknown => "Maaf, pesan tidak dikenali. Kirim BANTUAN untuk petunjuk, atau: \
                LAPOR isi laporan | CEK kode laporan"
                .to_owned(),
            Self::EmptyReport => {
                "Isi laporan kosong. Kirim: LAPOR isi laporan Anda. Contoh: LAPOR jalan desa \
                 rusak #infrastruktur"
                    .to_owned()
            }
            Self::NoCode { keyword } => format!(
                "Kode laporan tidak terbaca. Kirim: {keyword} kode, contoh: {keyword} 31-K7QX-9F2M"
            ),
            Self::EmptyReply(c) => format!("Balasan kosong. Kirim: BALAS {c} isi balasan"),
            Self::BadRating(c) => format!("Nilai harus 1 sampai 5. Kirim: NILAI {c} 5"),
            Self::Status { code, status, due } => {
                let due = due
                    .as_ref()
                    .map(|d| format!(" Batas waktu: {d}."))
                    .unwrap_or_default();
                format!("Laporan {code}: {}.{due}", status_words(*status))
            }
            Self::NotFound(c) => format!(
                "Laporan {c} tidak ditemukan untuk nomor ini. Periksa kodenya atau kirim BANTUAN."
            ),
            Self::Replied(c) => format!("Balasan Anda untuk laporan {c} sudah diterima."),
            Self::Rated(c, n) => format!("Terima kasih. Nilai {n} untuk laporan {c} tercatat."),
            Self::NotNow(c, s) => format!(
                "Laporan {c} {}; tindakan ini belum/tidak dapat dilakukan sekarang.",
                status_words(*s)
            ),
            Self::TooLong { max } => {
                format!("Pesan terlalu panjang (maks. {max} karakter). Mohon dipersingkat.")
            }
            Self::UnknownRegion => {
                "Kode wilayah (@) tidak dikenal. Pakai kode Kemendagri, contoh @3171, atau \
                 kirim tanpa @."
                    .to_owned()
            }
            Self::TryLater => "Maaf, layanan sedang sibuk. Silakan kirim lagi nanti.".to_owned(),
        };
        gsm::to_gsm7(&t)
    }
}

impl Notice {
    /// The notification's text (GSM-7; quotes are cut so the whole fits [`MAX_PARTS`] parts).
    #[must_use]
    pub fn text(&self) -> String {
        let t = match self {
            Self::Filed { code, ignored } => {
                let ignored = if ignored.is_empty() {
                    String::new()
                } else {
                    format!(" Tidak dikenali: {}.", ignored.join(" "))
                };
                let t = format!(
                    "LAPOR! Laporan diterima. Kode: {code}. Simpan kode ini; cek status: CEK {code}{ignored}"
                );
                return gsm::to_gsm7(&cut(&t, gsm::SINGLE));
            }
            Self::Verified(c) => format!("LAPOR! Laporan {c} sudah diverifikasi."),
            Self::Dispatched(c, a) => format!("LAPOR! Laporan {c} diteruskan ke {a}."),
            Self::Forwarded(c, to) => {
                format!("LAPOR! Laporan {c} diteruskan ke {to} untuk ditindaklanjuti.")
            }
            Self::Responded(c, m) => quoted(
                &format!("LAPOR! Tanggapan untuk {c}: "),
                m,
                &format!(" Balas: BALAS {c} isi"),
            ),
            Self::Resolved(c, m) => quoted(
                &format!("LAPOR! Laporan {c} selesai: "),
                m,
                &format!(" Beri nilai: NILAI {c} 1-5"),
            ),
            Self::Closed(c) => format!("LAPOR! Laporan {c} ditutup. Terima kasih."),
            Self::Archived(c) => {
                format!("LAPOR! Laporan {c} diarsipkan dan tidak ditindaklanjuti.")
            }
        };
        gsm::to_gsm7(&t)
    }
}

/// `head` + `quote` (cut to fit) + `tail` within [`MAX_PARTS`] parts.
fn quoted(head: &str, quote: &str, tail: &str) -> String {
    let quote = gsm::to_gsm7(quote);
    let quote = quote.split_whitespace().collect::<Vec<_>>().join(" ");
    // Cut shorter until the parts, split at spaces, are few enough.
    let mut room = (MAX_PARTS * gsm::PART).saturating_sub(gsm::len(head) + gsm::len(tail) + 2);
    loop {
        let text = format!("{head}\"{}\"{tail}", cut(&quote, room));
        if room <= 10 || gsm::split(&text).len() <= MAX_PARTS {
            return text;
        }
        room -= 10;
    }
}

/// `text` cut to at most `max` septets, with `...` when cut.
fn cut(text: &str, max: usize) -> String {
    if gsm::len(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 3;
    for c in text.chars() {
        let w = gsm::septets(c).unwrap_or(1);
        if used + w > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> TrackingCode {
        TrackingCode::parse("31-K7QX-9F2M").unwrap()
    }

    #[test]
    fn every_answer_is_one_gsm_message() {
        let c = code();
        let all = [
            Reply::Help,
            Reply::Unknown,
            Reply::EmptyReport,
            Reply::NoCode { keyword: "BALAS" },
            Reply::EmptyReply(c.clone()),
            Reply::BadRating(c.clone()),
            Reply::Status {
                code: c.clone(),
                status: Status::NotOurAuthority,
                due: Some("31-12-2026".into()),
            },
            Reply::NotFound(c.clone()),
            Reply::Replied(c.clone()),
            Reply::Rated(c.clone(), 5),
            Reply::NotNow(c.clone(), Status::NotOurAuthority),
            Reply::TooLong { max: 8000 },
            Reply::UnknownRegion,
            Reply::TryLater,
        ];
        for r in all {
            let t = r.text();
            assert_eq!(gsm::to_gsm7(&t), t);
            assert!(
                gsm::len(&t) <= gsm::SINGLE,
                "{r:?}: {} septets",
                gsm::len(&t)
            );
        }
        assert!(Reply::Unknown.text().starts_with("Maaf"));
    }

    #[test]
    fn notices_fit_and_a_long_answer_is_quoted_within_three_parts() {
        let c = code();
        let long = "Jalan akan diperbaiki minggu depan oleh dinas terkait. ".repeat(30);
        for n in [
            Notice::Filed {
                code: c.clone(),
                ignored: vec!["#xyz".into(); 20],
            },
            Notice::Verified(c.clone()),
            Notice::Forwarded(c.clone(), "Provinsi Papua Barat Daya".into()),
            Notice::Closed(c.clone()),
        ] {
            assert!(gsm::len(&n.text()) <= gsm::SINGLE, "{n:?}");
        }
        let t = Notice::Responded(c.clone(), long.clone()).text();
        assert!(gsm::split(&t).len() <= MAX_PARTS);
        assert!(t.contains("\"Jalan akan diperbaiki"), "{t}");
        assert!(t.ends_with("BALAS 31-K7QX-9F2M isi"), "{t}");
        let short = Notice::Resolved(c, "Sudah diperbaiki “hari ini”.".into()).text();
        assert!(
            short.contains("\"Sudah diperbaiki \"hari ini\".\""),
            "{short}"
        );
    }
}
