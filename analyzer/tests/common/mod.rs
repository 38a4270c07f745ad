//! Trace lines the analyzer's tests build their traces from.

/// A recorder line (`trace_marker`) of the application, on CPU 1.
pub fn app(ts: &str, body: &str) -> String {
    format!("app-1 [001] ..... {ts}: tracing_mark_write: xskdbg:1 {body}\n")
}

/// The recorder's declarations of one socket (`sk=1:2:0 sid=11`, label
/// `q0`), its pool 1 and its UMEM 1 (4 KiB chunks), at `ts[0..3]`.
pub fn declare_q0(ts: [&str; 3]) -> String {
    app(
        ts[0],
        "umem umem=1 size=400000 chunk=1000 mode=aligned headroom=0",
    ) + &app(ts[1], "pool pool=1 umem=1 sk=1:2:0")
        + &app(ts[2], "sock sk=1:2:0 sid=11 pool=1 umem=1 fd=3 label=q0")
}
