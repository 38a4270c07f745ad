//! Explanations: the text of a finding, written out only for the findings
//! that are reported, and the phrases several rules share.

use super::state::{AppHold, Place};

/// A finding's explanation, or how to write it: a wrapped trace's first
/// stretch can make tens of thousands of findings that are never reported
/// (they cannot be judged), and writing theirs out on the spot was a few
/// percent of the whole analysis.
pub(super) enum Expl {
    /// Written.
    Text(String),
    /// To write when the finding is reported.
    Later(Box<dyn Fn() -> String>),
}

impl Expl {
    pub(super) fn render(&self) -> String {
        match self {
            Expl::Text(t) => t.clone(),
            Expl::Later(f) => f(),
        }
    }

    pub(super) fn into_text(self) -> String {
        match self {
            Expl::Text(t) => t,
            Expl::Later(f) => f(),
        }
    }

    /// The text, written out first if need be, to append to.
    pub(super) fn text_mut(&mut self) -> &mut String {
        if let Expl::Later(f) = self {
            *self = Expl::Text(f());
        }
        match self {
            Expl::Text(t) => t,
            Expl::Later(_) => unreachable!("written out above"),
        }
    }
}

impl From<String> for Expl {
    fn from(t: String) -> Expl {
        Expl::Text(t)
    }
}

/// `on FILL and held by the app after RX`: the words of an explanation.
impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.fill > 0 {
            parts.push(if self.fill > 1 {
                format!("on FILL {} times", self.fill)
            } else {
                "on FILL".into()
            });
        }
        if self.krx > 0 {
            parts.push("on RX (written by the kernel, not yet read)".into());
        }
        if self.tx > 0 {
            parts.push("on TX (not yet completed)".into());
        }
        if self.kcomp > 0 {
            parts.push("on COMPLETION (not yet consumed)".into());
        }
        match self.app {
            AppHold::No => {}
            AppHold::Rx => parts.push("held by the app after RX".into()),
            AppHold::Comp => parts.push("held by the app after COMPLETION".into()),
            AppHold::Held => parts.push("held by an app thread".into()),
            AppHold::Free => parts.push("on the app's free list".into()),
        }
        if parts.is_empty() {
            f.write_str("nowhere known")
        } else {
            f.write_str(&parts.join(" and "))
        }
    }
}
