//! The SMS keywords, read the way citizens type them: any case, extra spaces and punctuation,
//! the keyword glued to what follows (`LAPOR:jalan`, `CEK31-K7QX-9F2M`), common misspellings
//! and synonyms (`LAPORAN`, `LPR`, `CEK`/`CK`/`STATUS`, `BLS`, `NILAY`, `HELP`), tracking codes
//! with or without dashes or spaces, ratings as digits, words or stars.
//!
//! | keyword | meaning |
//! |---|---|
//! | `LAPOR <isi> [#kategori] [@kode wilayah] [#rahasia] [#terbuka] [#aspirasi] [#informasi]` | a new report |
//! | `CEK <kode>` | status and deadline of a report |
//! | `BALAS <kode> <isi>` | the citizen's reply |
//! | `NILAI <kode> <1-5>` | the citizen's rating |
//! | `BANTUAN` | how to use the service |
//!
//! Parsing is pure and total: every input gives a [`Command`] (`Unknown` when nothing fits).

use crate::domain::{Category, RegionCode, ReportKind, TrackingCode};

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LAPOR`: a new report.
    Report(SmsReport),
    /// `CEK`: the status of a report (`None`: no readable code was given).
    Check(Option<TrackingCode>),
    /// `BALAS`: a reply (`None` code: none readable; the text may be empty).
    Reply(Option<TrackingCode>, String),
    /// `NILAI`: a rating (`None`: no readable code or no rating from 1 to 5).
    Rate(Option<TrackingCode>, Option<u8>),
    /// `BANTUAN`.
    Help,
    /// Nothing recognised (or an empty message).
    Unknown,
}

/// A report as read from a `LAPOR` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReport {
    /// The text, with the tags taken out (may be empty: the citizen is asked to write it).
    pub text: String,
    /// `#kategori` (default `lainnya`).
    pub category: Option<Category>,
    /// `@kode`: a 2- or 4-digit region code.
    pub region: Option<RegionCode>,
    /// `#aspirasi` / `#informasi` (default: a complaint).
    pub kind: ReportKind,
    /// `#rahasia`: the report itself is not public.
    pub confidential: bool,
    /// `#terbuka`: the reporter is not hidden from officers (SMS reports are anonymous unless
    /// the citizen writes this).
    pub named: bool,
    /// Tags that were not understood (answered, not filed as text).
    pub unknown_tags: Vec<String>,
}

/// The keyword families and the spellings taken for them.
const FAMILIES: &[(Keyword, &[&str])] = &[
    (
        Keyword::Report,
        &[
            "LAPOR",
            "LAPORAN",
            "LAPORKAN",
            "LPR",
            "LPOR",
            "LAPR",
            "ADU",
            "ADUAN",
            "PENGADUAN",
            "MELAPOR",
        ],
    ),
    (
        Keyword::Check,
        &[
            "CEK", "CEKK", "CK", "CHECK", "CHEK", "CEX", "CECK", "STATUS", "LACAK", "PERIKSA",
        ],
    ),
    (
        Keyword::Reply,
        &["BALAS", "BLS", "BALES", "BALAZ", "BALS", "JAWAB", "REPLY"],
    ),
    (
        Keyword::Rate,
        &[
            "NILAI", "NILAY", "NILA", "NLAI", "RATING", "SKOR", "BINTANG",
        ],
    ),
    (
        Keyword::Help,
        &[
            "BANTUAN", "BANTU", "HELP", "TOLONG", "INFO", "MENU", "PETUNJUK", "?",
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Report,
    Check,
    Reply,
    Rate,
    Help,
}

/// Reads a message.
#[must_use]
pub fn parse(message: &str) -> Command {
    let text = normalise(message);
    let Some((keyword, rest)) = keyword(&text) else {
        return Command::Unknown;
    };
    match keyword {
        Keyword::Report => Command::Report(report(rest)),
        Keyword::Check => Command::Check(tracking_code(rest).map(|(c, _)| c)),
        Keyword::Reply => match tracking_code(rest) {
            Some((code, after)) => Command::Reply(Some(code), clean_body(after)),
            None => Command::Reply(None, clean_body(rest)),
        },
        Keyword::Rate => match tracking_code(rest) {
            Some((code, after)) => Command::Rate(Some(code), rating(after)),
            None => Command::Rate(None, rating(rest)),
        },
        Keyword::Help => Command::Help,
    }
}

/// Control characters to spaces, runs of spaces to one, trimmed.
fn normalise(message: &str) -> String {
    let spaced: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The keyword at the start of `text` and the rest after it: leading punctuation skipped, the
/// word ends at the first character that is not a letter (`LAPOR:jalan`, `CEK31-…`).
fn keyword(text: &str) -> Option<(Keyword, &str)> {
    let start = text.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '?');
    if let Some(rest) = start.strip_prefix('?') {
        return Some((Keyword::Help, rest));
    }
    let end = start
        .find(|c: char| !c.is_alphabetic())
        .unwrap_or(start.len());
    let (word, rest) = start.split_at(end);
    let word = word.to_uppercase();
    if word.is_empty() || word.chars().count() > 12 {
        return None;
    }
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || ":.,;=!*-".contains(c));
    // Exact spellings first, then one typo away from a keyword of five letters or more.
    for (k, spellings) in FAMILIES {
        if spellings.contains(&word.as_str()) {
            return Some((*k, rest));
        }
    }
    for (k, spellings) in FAMILIES {
        if spellings
            .iter()
            .filter(|s| s.len() >= 5)
            .any(|s| within_one_edit(s, &word))
        {
            return Some((*k, rest));
        }
    }
    None
}

/// Whether `a` and `b` differ by at most one insertion, deletion, substitution or swap of
/// neighbours.
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return true;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match ra.len().cmp(&rb.len()) {
        std::cmp::Ordering::Equal => {
            ra[1..] == rb[1..]
                || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        std::cmp::Ordering::Greater => ra.len() == rb.len() + 1 && ra[1..] == *rb,
        std::cmp::Ordering::Less => rb.len() == ra.len() + 1 && rb[1..] == *ra,
    }
}

/// A tracking code at the start of `text` (after punctuation), written with dashes, spaces,
/// dots or nothing between its groups, in any case; and the text after it.
fn tracking_code(text: &str) -> Option<(TrackingCode, &str)> {
    let text = text.trim_start_matches(|c: char| !c.is_alphanumeric());
    let mut symbols = String::new();
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphanumeric() {
            symbols.push(c.to_ascii_uppercase());
            end = i + 1;
            if symbols.len() == 10 {
                break;
            }
        } else if matches!(c, '-' | ' ' | '.' | '/' | '_') && symbols.len() < 10 {
            // Separators only where a group ends (so the words after a short code are not
            // read into it).
            if !matches!(symbols.len(), 2 | 6) {
                return None;
            }
        } else {
            return None;
        }
    }
    if symbols.len() != 10 {
        return None;
    }
    let formatted = format!("{}-{}-{}", &symbols[..2], &symbols[2..6], &symbols[6..]);
    let code = TrackingCode::parse(&formatted).ok()?;
    // The code must end at a word boundary.
    let after = &text[end..];
    if after.chars().next().is_some_and(char::is_alphanumeric) {
        return None;
    }
    Some((code, after))
}

/// A rating from 1 to 5: the first digit, number word or run of stars in `text`.
fn rating(text: &str) -> Option<u8> {
    const WORDS: [&str; 5] = ["SATU", "DUA", "TIGA", "EMPAT", "LIMA"];
    let stars = text.chars().filter(|c| *c == '*').count();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        if let Ok(n) = word.parse::<u8>() {
            return (1..=5).contains(&n).then_some(n);
        }
        let up = word.to_uppercase();
        if let Some(i) = WORDS.iter().position(|w| *w == up) {
            return u8::try_from(i + 1).ok();
        }
    }
    u8::try_from(stars).ok().filter(|n| (1..=5).contains(n))
}

/// Free text as sent, without leading punctuation the keyword left.
fn clean_body(text: &str) -> String {
    text.trim_start_matches(|c: char| c.is_whitespace() || ":.,;-".contains(c))
        .trim()
        .to_owned()
}

/// The report in a `LAPOR` message: tags (`#…`, `@…`) taken out of the text.
fn report(rest: &str) -> SmsReport {
    let mut r = SmsReport {
        text: String::new(),
        category: None,
        region: None,
        kind: ReportKind::Pengaduan,
        confidential: false,
        named: false,
        unknown_tags: Vec::new(),
    };
    let mut words = Vec::new();
    for word in rest.split(' ') {
        let bare = word.trim_end_matches(|c: char| ",.;:!?".contains(c));
        if let Some(tag) = bare.strip_prefix('#').filter(|t| !t.is_empty()) {
            let tag = tag.to_lowercase();
            match tag.as_str() {
                "rahasia" => r.confidential = true,
                "terbuka" | "tidakanonim" | "bukananonim" => r.named = true,
                "aspirasi" | "saran" => r.kind = ReportKind::Aspirasi,
                "informasi" | "info" => r.kind = ReportKind::PermintaanInformasi,
                _ => match Category::parse(&tag) {
                    Ok(c) if r.category.is_none() => r.category = Some(c),
                    _ => r.unknown_tags.push(format!("#{tag}")),
                },
            }
        } else if let Some(code) = bare.strip_prefix('@').filter(|t| !t.is_empty()) {
            let digits: String = code.chars().filter(char::is_ascii_digit).collect();
            match RegionCode::parse(&digits) {
                Ok(region) if r.region.is_none() && digits.len() == code.len() => {
                    r.region = Some(region);
                }
                _ => r.unknown_tags.push(format!("@{code}")),
            }
        } else {
            words.push(word);
        }
    }
    r.text = clean_body(&words.join(" "));
    r
}

#[cfg(test)]
mod tests;
