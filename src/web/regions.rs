//! The regencies and cities a citizen picks from: reference data in `config/regencies.csv`
//! (embedded), never in code. Rows that do not parse are left out of the list (the form
//! then offers fewer choices); the file is checked by a test.

/// The embedded list.
pub const REGENCIES: &str = include_str!("../../config/regencies.csv");

/// `(code, name)` of every regency and city of `province` in the list, in file order.
#[must_use]
pub fn of_province(province: &str) -> Vec<(String, String)> {
    parse(REGENCIES)
        .into_iter()
        .filter(|(code, _)| code.get(..2) == Some(province))
        .collect()
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with("code,"))
        .filter_map(|l| l.split_once(','))
        .map(|(c, n)| (c.trim().to_owned(), n.trim().to_owned()))
        .filter(|(c, n)| {
            crate::domain::RegionCode::parse(c).is_ok() && c.len() == 4 && !n.is_empty()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_list_parses() {
        let rows = REGENCIES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(
            parse(REGENCIES).len(),
            rows - 1,
            "a row of regencies.csv does not parse"
        );
        let ntt = of_province("53");
        assert!(ntt.iter().any(|(c, n)| c == "5371" && n == "Kota Kupang"));
        assert!(of_province("11").is_empty());
    }
}
