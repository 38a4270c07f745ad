//! The key under every figure: what each mark, band and state colour means.

use std::fmt::Write as _;

pub(super) fn legend(o: &mut String) {
    o.push_str("<div class=\"legend\">");
    let item = |o: &mut String, svg: &str, text: &str| {
        let _ = write!(o, "<span><svg viewBox=\"-8 -8 16 16\" width=\"16\" height=\"16\">{svg}</svg>{text}</span>");
    };
    item(
        o,
        "<path class=\"lg m-recv\" d=\"M-6.5,-6 L6.5,-6 L0,6 Z\"/>",
        "kernel receive",
    );
    item(
        o,
        "<rect class=\"lg m-flush\" x=\"-2.5\" y=\"-7\" width=\"5\" height=\"14\"/>",
        "flush (RX producer published)",
    );
    item(
        o,
        "<path class=\"lg m-xmit\" d=\"M-6.5,6 L6.5,6 L0,-6 Z\"/>",
        "kernel transmit",
    );
    item(
        o,
        "<path class=\"lg m-kcomp\" d=\"M0,-6.5 L6.5,0 L0,6.5 L-6.5,0 Z\"/>",
        "kernel completion",
    );
    item(
        o,
        "<circle class=\"lg m-app\" r=\"5.5\"/>",
        "application ring op",
    );
    item(
        o,
        "<path class=\"lg m-viol x\" d=\"M-6,-6 L6,6 M6,-6 L-6,6\"/>",
        "violation seen by the app",
    );
    item(o, "<circle class=\"lg ring\" r=\"6\"/>", "finding's events");
    item(o, "<circle class=\"lg halo\" r=\"7\"/><line x1=\"0\" y1=\"-8\" x2=\"0\" y2=\"8\" class=\"lg mline\"/>", "the finding's moment");
    item(
        o,
        "<rect class=\"lg sect\" x=\"-7\" y=\"-5\" width=\"14\" height=\"10\"/>",
        "producer section",
    );
    item(
        o,
        "<rect class=\"lg overlap2\" x=\"-7\" y=\"-5\" width=\"14\" height=\"10\"/>",
        "two CPUs producing at once",
    );
    for (cls, name) in [
        ("s-fill", "FILL"),
        ("s-rxq", "RX ring (kernel wrote, app has not read)"),
        ("s-rx", "RX (app read it)"),
        ("s-tx", "TX"),
        ("s-comp", "COMP"),
        ("s-held", "HELD"),
        ("s-free", "FREE"),
    ] {
        let svg =
            format!("<rect class=\"lg seg {cls}\" x=\"-7\" y=\"-3\" width=\"14\" height=\"6\"/>");
        item(o, &svg, name);
    }
    o.push_str("</div>");
}
