//! A receive and the read of its slot in the same microsecond: the
//! application's line (microsecond stamp) sorts before the kernel's
//! (nanosecond stamp, or printed after it). A new socket's first packet in
//! SKB mode, before any `krx` showed the mode: judged in trace order, the
//! kernel "received" a frame the application held and its refill was an
//! `application` finding (6.12's xskxceiver TEARDOWN, recorded on the host).

mod common;

use common::{app, declare_q0};
use xskdbg_analyzer::{analyze_reader, Options};

fn trace(krx_at: &str) -> String {
    let mut t = String::from("# entries-in-buffer/entries-written: 9/9   #P:2\n");
    t += &declare_q0(["1.000001", "1.000002", "1.000003"]);
    t += &app("1.000004", "fill pool=1 n=2 a=0,1000");
    t += &app("1.000100", "rx sk=1:2:0 sid=11 pool=1 idx=0 n=1 d=100:40");
    t += &format!(
        "k-3 [000] ..s2. {krx_at}: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=40 slot=0 mode=skb\n"
    );
    t += &app("1.000102", "fill pool=1 n=1 a=100");
    t
}

#[test]
fn a_receive_that_sorts_after_its_read_in_the_same_microsecond_is_no_finding() {
    let r = analyze_reader(trace("1.000100").as_bytes(), &Options::default()).unwrap();
    assert!(r.findings.is_empty(), "{}", r.to_json());
}

#[test]
fn a_receive_long_after_the_read_of_its_frame_is_still_judged() {
    // 50 us later is no tie: the kernel wrote a frame the app already held.
    let r = analyze_reader(trace("1.000150").as_bytes(), &Options::default()).unwrap();
    assert!(!r.findings.is_empty(), "{}", r.to_json());
}
