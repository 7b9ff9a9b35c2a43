//! Assembling the page: the template, its style and scripts (compiled in,
//! so the binary carries them) and the model as JSON. Nothing is fetched:
//! the file works offline and from `file://`.

use super::model::Model;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("viz.css");
/// In order: the view state and lookups, the drawing (layout and lanes, then
/// events), the controls. One script, sharing one scope.
const SCRIPTS: [&str; 4] =
    [include_str!("view.js"), include_str!("draw.js"), include_str!("events.js"), include_str!("ui.js")];

/// The whole page for `model`.
pub fn render_html(model: &Model) -> String {
    let data = serde_json::to_string(model).expect("the model serializes (no maps with non-string keys)");
    // Inside <script>, "</script>" or "<!--" in a string would end or
    // confuse the element; "\u003c" is the same JSON string without a '<'.
    let data = data.replace('<', "\\u003c");
    let title = html_escape(&model.title);
    let script = SCRIPTS.join("\n");
    fill(TEMPLATE, &[("{{TITLE}}", &title), ("{{STYLE}}", STYLE), ("{{DATA}}", &data), ("{{SCRIPT}}", &script)])
}

/// Replace each `{{NAME}}` of `template` by its value. One pass over the
/// template: a value that contains "{{" is not scanned again.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}").expect("the template closes every {{") + 2;
        let name = &rest[start..end];
        let (_, value) = values.iter().find(|(n, _)| *n == name).expect("the template names only known values");
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Clock, Header, Source, Trace};

    fn empty_trace() -> Trace {
        Trace {
            header: Header::new(Source::Sim, Clock::Sim, vec![1, 2, 3]),
            records: Vec::new(),
            skipped_unknown: 0,
            torn_tail: false,
        }
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let html = render_html(&crate::viz::build(&empty_trace(), "</script><b>&"));
        assert_eq!(html.matches("</script>").count(), 2, "only the two real script ends");
        assert!(html.contains("<title>&lt;/script&gt;&lt;b&gt;&amp;</title>"));
        assert!(html.contains(r#""title":"\u003c/script>\u003cb>&""#));
    }

    #[test]
    fn every_placeholder_is_filled() {
        let html = render_html(&crate::viz::build(&empty_trace(), "t"));
        for placeholder in ["{{TITLE}}", "{{STYLE}}", "{{SCRIPT}}", "{{DATA}}"] {
            assert!(!html.contains(placeholder), "{placeholder} left in the page");
        }
    }
}
