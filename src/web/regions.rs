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
        assert!(
            ntt.iter()
                .any(|(c, n)| c == "5301" && n == "Kabupaten Kupang")
        );
        // Every province of the reference list offers its regencies, and no row names a
        // province that is not on it.
        let provinces: Vec<&str> = include_str!("../../config/provinces.csv")
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .filter_map(|l| l.split(',').next())
            .collect();
        assert_eq!(provinces.len(), 38);
        for p in &provinces {
            assert!(!of_province(p).is_empty(), "province {p} has no regencies");
        }
        let listed: usize = provinces.iter().map(|p| of_province(p).len()).sum();
        assert_eq!(
            listed,
            parse(REGENCIES).len(),
            "a row names an unknown province"
        );
        assert_eq!(listed, 514, "Kemendagri lists 416 regencies and 98 cities");
    }
}
