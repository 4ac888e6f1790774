//! What `fakesmsc` prints of the messages Kannel delivers, read back: lines parsed, the
//! parts of concatenated messages joined.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A message Kannel delivered to a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The receiving number, as the node addressed it.
    pub to: String,
    /// The text (parts joined).
    pub text: String,
}

/// Waits until a message delivered into `lines` satisfies `want` (up to `timeout`).
pub fn wait_in(
    lines: &Mutex<Vec<String>>,
    timeout: Duration,
    want: impl Fn(&Delivered) -> bool,
) -> Option<Delivered> {
    let until = Instant::now() + timeout;
    loop {
        let now = lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(d) = join_parts(&now).into_iter().find(|d| want(d)) {
            return Some(d);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines `from to text …` or `from to udh UDH data TEXT` (urlcoded) as fakesmsc prints them,
/// with the parts of concatenated messages (UDH `05 00 03 ref total seq`) joined.
pub(super) fn join_parts(lines: &[String]) -> Vec<Delivered> {
    let mut out = Vec::new();
    let mut parts: std::collections::HashMap<(String, u8), Vec<Option<String>>> =
        std::collections::HashMap::new();
    for line in lines {
        let mut f = line.splitn(4, ' ');
        let (_, Some(to), Some(kind), Some(rest)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        match kind {
            "text" => out.push(Delivered {
                to: to.to_owned(),
                text: rest.to_owned(),
            }),
            "udh" => {
                let mut r = rest.splitn(3, ' ');
                let (Some(udh), _, Some(data)) = (r.next(), r.next(), r.next()) else {
                    continue;
                };
                let udh = crate::sms::http::percent_decode(udh);
                let text =
                    String::from_utf8_lossy(&crate::sms::http::percent_decode(data)).into_owned();
                if let [5, 0, 3, reference, total, seq] = udh[..] {
                    let slot = parts
                        .entry((to.to_owned(), reference))
                        .or_insert_with(|| vec![None; usize::from(total)]);
                    if let Some(s) = slot.get_mut(usize::from(seq).saturating_sub(1)) {
                        *s = Some(text);
                    }
                    if slot.iter().all(Option::is_some) {
                        let joined = slot.iter().flatten().cloned().collect::<Vec<_>>().join(" ");
                        parts.remove(&(to.to_owned(), reference));
                        out.push(Delivered {
                            to: to.to_owned(),
                            text: joined,
                        });
                    }
                } else {
                    out.push(Delivered {
                        to: to.to_owned(),
                        text,
                    });
                }
            }
            _ => out.push(Delivered {
                to: to.to_owned(),
                text: String::from_utf8_lossy(&crate::sms::http::percent_decode(
                    rest.rsplit(' ').next().unwrap_or(rest),
                ))
                .into_owned(),
            }),
        }
    }
    out
}
