//! Charts as server-rendered SVG (no script, no image files): a horizontal bar chart of
//! labelled counts. Labels are escaped like any other text (`maud`).

use maud::{Markup, html};

/// One bar: label, value, and the text shown after the bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label.
    pub label: String,
    /// Value (bars are scaled to the largest).
    pub value: i64,
    /// The value as shown (`12`, `83 %`).
    pub shown: String,
}

const ROW: i64 = 22;
const LABEL_W: i64 = 220;
const BAR_W: i64 = 360;

/// A horizontal bar chart titled `title` (its accessible name), one row per bar.
#[must_use]
pub fn bars(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let count = i64::try_from(bars.len()).unwrap_or(i64::MAX / ROW);
    let height = (count * ROW).max(ROW);
    let width = LABEL_W + BAR_W + 150;
    html! {
        svg id=(id) role="img" aria-label=(title) width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @for (i, b) in bars.iter().enumerate() {
                @let y = i64::try_from(i).unwrap_or(0) * ROW;
                @let w = (b.value.max(0) * BAR_W / max).max(i64::from(b.value > 0));
                text x=(LABEL_W - 6) y=(y + 15) text-anchor="end" font-size="13" { (b.label) }
                rect x=(LABEL_W) y=(y + 3) width=(w) height=(ROW - 6) fill="#0b4f9c" {}
                text x=(LABEL_W + w + 6) y=(y + 15) font-size="13" { (b.shown) }
            }
        }
    }
}

/// Bars of `(label, count)` rows, labels mapped by `name`.
#[must_use]
pub fn counts(rows: &[(String, i64)], name: impl Fn(&str) -> String) -> Vec<Bar> {
    rows.iter()
        .map(|(label, n)| Bar {
            label: name(label),
            value: *n,
            shown: n.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars(
            "c",
            "t",
            &counts(
                &[("<a>".into(), 10), ("b".into(), 5), ("z".into(), 0)],
                str::to_owned,
            ),
        )
        .into_string();
        assert!(svg.contains("width=\"360\""), "{svg}");
        assert!(svg.contains("width=\"180\""), "{svg}");
        assert!(
            svg.contains("width=\"0\""),
            "a zero count draws no bar: {svg}"
        );
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
    }
}
