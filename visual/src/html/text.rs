//! Text helpers of the page: escaping (the trace is untrusted input),
//! shortening, a width estimate for labels, and the CSS class of a verdict or
//! a state.

use xskdbg_analyzer::report::OverallVerdict;
use xskdbg_analyzer::Verdict;

use crate::model::State;

/// Escape text for HTML text and attribute values; control characters
/// (other than tab) become U+FFFD.
pub(super) fn esc_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    esc_into(&mut o, s);
    o
}

pub(super) fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Kernel => "v-kernel",
        Verdict::Application => "v-app",
        Verdict::Inconclusive => "v-inc",
        Verdict::Instrumentation => "v-instr",
    }
}

pub(super) fn overall_name(v: OverallVerdict) -> (&'static str, &'static str) {
    match v {
        OverallVerdict::Clean => ("clean", "v-clean"),
        OverallVerdict::Kernel => ("kernel", "v-kernel"),
        OverallVerdict::Application => ("application", "v-app"),
        OverallVerdict::Inconclusive => ("inconclusive", "v-inc"),
        OverallVerdict::Mixed => ("mixed", "v-mixed"),
        OverallVerdict::Instrumentation => ("instrumentation", "v-instr"),
    }
}

pub(super) fn state_class(s: State) -> &'static str {
    match s {
        State::Fill => "s-fill",
        State::Rx => "s-rx",
        State::Tx => "s-tx",
        State::Comp => "s-comp",
        State::Held => "s-held",
        State::Free => "s-free",
        State::Unknown => "s-unk",
    }
}

pub(super) fn seg_class(name: &str, st: State) -> &'static str {
    match name {
        "RX ring" => "s-rxq",
        "COMP ring" => "s-compq",
        _ => state_class(st),
    }
}

/// Rough text width in px at the label font size (monospace-ish estimate).
pub(super) fn text_w(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * px * 0.6
}

pub(super) fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<script>&\"'\u{1}"),
            "&lt;script&gt;&amp;&quot;&#39;\u{fffd}"
        );
    }

    #[test]
    fn ellipsis() {
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
    }
}
