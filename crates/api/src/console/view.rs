//! The console's templates and the small vocabulary of page parts they render.

use askama::Template;

/// One value on a page, optionally a link.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub text: String,
    pub href: Option<String>,
    pub numeric: bool,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: None,
            numeric: false,
        }
    }

    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: Some(href.into()),
            numeric: false,
        }
    }

    /// An amount or a count, right-aligned.
    pub fn number(text: impl Into<String>) -> Cell {
        Cell {
            numeric: true,
            ..Cell::text(text)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// A part of a page: a heading, label–value pairs, a table, or a chart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Section {
    pub heading: String,
    pub fields: Vec<(String, Cell)>,
    pub table: Option<Table>,
    /// An SVG built by [`bar_chart`] from numbers and escaped labels only.
    pub chart: Option<String>,
}

impl Section {
    pub fn new(heading: &str) -> Section {
        Section {
            heading: heading.to_owned(),
            ..Section::default()
        }
    }

    pub fn field(mut self, label: &str, value: Cell) -> Section {
        self.fields.push((label.to_owned(), value));
        self
    }

    pub fn table(mut self, table: Table) -> Section {
        self.table = Some(table);
        self
    }
}

#[derive(Template)]
#[template(path = "console/page.html")]
pub(crate) struct PageView {
    pub title: String,
    pub operator: Option<String>,
    pub csrf: String,
    pub flash: Option<String>,
    pub sections: Vec<Section>,
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub(crate) struct LoginView {
    pub title: String,
    pub operator: Option<String>,
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
pub(crate) struct ConfirmView {
    pub title: String,
    pub operator: Option<String>,
    pub csrf: String,
    pub message: String,
    pub action: String,
    pub button: String,
    pub back: String,
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub(crate) struct ErrorView {
    pub title: String,
    pub operator: Option<String>,
    pub csrf: String,
    pub message: String,
}

/// A bar chart of `(label, value)` as inline SVG: one bar per label, scaled to the largest
/// value. Labels are escaped; nothing else in it comes from outside.
pub(crate) fn bar_chart(title: &str, bars: &[(String, i64)]) -> String {
    const WIDTH: i64 = 36;
    const HEIGHT: i64 = 120;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fff;border:1px solid #d8dde3\">",
        escape(title),
        WIDTH * bars.len() as i64 + 10,
        HEIGHT + 40
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let height = (value.max(&0) * HEIGHT) / max;
        let x = 5 + WIDTH * i as i64;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{height}\" fill=\"#3b6ea5\">\
             <title>{}: {value}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            10 + HEIGHT - height,
            WIDTH - 6,
            escape(label),
            x + (WIDTH - 6) / 2,
            HEIGHT + 25,
            escape(label),
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_scales_bars_and_escapes_labels() {
        let svg = bar_chart("t<", &[("a&b".into(), 50), ("c".into(), 100)]);
        assert!(svg.contains("height=\"60\""), "{svg}");
        assert!(svg.contains("height=\"120\""), "{svg}");
        assert!(svg.contains("a&amp;b") && svg.contains("t&lt;"));
        assert!(!svg.contains("a&b"));
    }
}
