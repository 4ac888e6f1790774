//! Form bodies (`application/x-www-form-urlencoded`) and query strings of the console, read
//! leniently: a field that is missing or blank is `None`, and every check of a value is the
//! tickets wing's or `auth`'s, so the form shows the same refusal the API gives.

use serde::Deserialize;

/// The fields of a form, in order (a repeated name keeps its first value).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a urlencoded body (invalid UTF-8 is replaced, so nothing is refused here).
    #[must_use]
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The raw value of `name`.
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, `""` when missing.
    #[must_use]
    pub fn text(&self, name: &str) -> String {
        self.raw(name).unwrap_or_default().to_owned()
    }

    /// The value of `name` with surrounding blanks removed, `None` when missing or blank.
    #[must_use]
    pub fn given(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Whether a checkbox `name` is ticked.
    #[must_use]
    pub fn ticked(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

/// The language switch's query.
#[derive(Debug, Deserialize)]
pub struct Switch {
    /// `id` or `en`.
    pub ke: String,
    /// The path to return to.
    pub kembali: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_are_not_given_and_values_are_decoded() {
        let f = Fields::parse(b"title=+Jalan+rusak+&body=&anonim=on&x=%3Cscript%3E");
        assert_eq!(f.given("title").as_deref(), Some("Jalan rusak"));
        assert_eq!(f.given("body"), None);
        assert!(f.ticked("anonim"));
        assert!(!f.ticked("rahasia"));
        assert_eq!(f.text("x"), "<script>");
    }
}
