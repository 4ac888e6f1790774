//! GSM 03.38 text: what a basic phone shows without switching to UCS-2 (which would cut a
//! message to 70 characters), and clean splitting.
//!
//! - [`to_gsm7`] maps any text onto the GSM 7-bit default alphabet: characters of the basic
//!   table stay, the extension table's (`{ } [ ] ~ \ ^ | €`) stay and count twice, common
//!   accented letters and typographic quotes and dashes become their plain forms, anything
//!   else becomes `?`; control characters become spaces.
//! - [`split`] cuts a text into one message of at most 160 septets, or parts of at most 153
//!   (the concatenation header takes the rest), at spaces when it can, never inside an
//!   extension pair.

/// Septets in one message.
pub const SINGLE: usize = 160;
/// Septets in one part of a concatenated message.
pub const PART: usize = 153;

/// The basic table, in code order (the escape at 0x1B is left out).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table (each takes an escape septet and its own).
const EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Septets `c` takes, or `None` when it is not in the alphabet.
#[must_use]
pub fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The septet length of a text already in the alphabet (others count as one, as `?`).
#[must_use]
pub fn len(text: &str) -> usize {
    text.chars().map(|c| septets(c).unwrap_or(1)).sum()
}

/// `text` in the GSM 7-bit alphabet: see the module doc.
#[must_use]
pub fn to_gsm7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' || septets(c).is_some() && !c.is_control() {
            out.push(c);
            continue;
        }
        match c {
            'á' | 'â' | 'ã' | 'ā' => out.push('a'),
            'Á' | 'À' | 'Â' | 'Ã' => out.push('A'),
            'ê' | 'ë' | 'ē' => out.push('e'),
            'È' | 'Ê' | 'Ë' => out.push('E'),
            'í' | 'î' | 'ï' => out.push('i'),
            'Í' | 'Ì' | 'Î' | 'Ï' => out.push('I'),
            'ó' | 'ô' | 'õ' => out.push('o'),
            'Ó' | 'Ò' | 'Ô' | 'Õ' => out.push('O'),
            'ú' | 'û' => out.push('u'),
            'Ú' | 'Ù' | 'Û' => out.push('U'),
            'ç' => out.push('c'),
            'ý' | 'ÿ' => out.push('y'),
            '‘' | '’' | '`' | '´' => out.push('\''),
            '“' | '”' | '«' | '»' => out.push('"'),
            '–' | '—' | '−' => out.push('-'),
            '…' => out.push_str("..."),
            '•' | '·' => out.push('*'),
            c if c.is_whitespace() || c.is_control() => out.push(' '),
            _ => out.push('?'),
        }
    }
    out
}

/// Splits GSM-7 `text` into messages: itself when it fits in [`SINGLE`] septets, otherwise
/// parts of at most [`PART`] septets, cut after the last space that fits (or, in a word longer
/// than a part, where the part is full). Whitespace at the cuts is dropped. An empty text is one
/// empty message.
#[must_use]
pub fn split(text: &str) -> Vec<String> {
    if len(text) <= SINGLE {
        return vec![text.to_owned()];
    }
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        // The longest run from `start` within a part.
        let mut used = 0;
        let mut end = start;
        while end < chars.len() {
            let w = septets(chars[end]).unwrap_or(1);
            if used + w > PART {
                break;
            }
            used += w;
            end += 1;
        }
        let cut = if end == chars.len() {
            end
        } else {
            // Cut after the last space in the run, when there is one past its start.
            chars[start..end]
                .iter()
                .rposition(|c| *c == ' ' || *c == '\n')
                .filter(|p| *p > 0)
                .map_or(end, |p| start + p + 1)
        };
        let part: String = chars[start..cut].iter().collect();
        parts.push(part.trim_end().to_owned());
        start = cut;
        while start < chars.len() && (chars[start] == ' ' || chars[start] == '\n') {
            start += 1;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indonesian_text_stays_and_other_characters_become_plain_gsm() {
        assert_eq!(to_gsm7("Laporan Anda: 31-K7QX"), "Laporan Anda: 31-K7QX");
        assert_eq!(
            to_gsm7("“Jalan” rusak — parah…"),
            "\"Jalan\" rusak - parah..."
        );
        assert_eq!(to_gsm7("café é"), "café é");
        assert_eq!(to_gsm7("jalan\u{1b}rusak\t😀"), "jalan rusak ?");
        assert_eq!(len("a{b}€"), 8);
    }

    #[test]
    fn a_text_of_160_is_one_message_and_longer_is_split_at_spaces_within_153() {
        let one = "a".repeat(160);
        assert_eq!(split(&one), vec![one.clone()]);
        let words = "kata ".repeat(60);
        let parts = split(words.trim_end());
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(len(p) <= PART, "{} septets", len(p));
            assert!(p.ends_with("kata"), "cut inside a word: {p:?}");
        }
        assert_eq!(parts.join(" "), words.trim_end());
    }

    #[test]
    fn a_word_longer_than_a_part_is_cut_where_the_part_is_full_and_escapes_stay_whole() {
        let long = "x".repeat(400);
        let parts = split(&long);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [153, 153, 94]
        );
        let braces = "{".repeat(100);
        let parts = split(&braces);
        assert!(parts.iter().all(|p| len(p) <= PART));
        assert_eq!(parts.concat(), braces);
    }
}
