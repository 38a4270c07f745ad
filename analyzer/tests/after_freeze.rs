//! After its first violation the recorder stops writing and freezes the
//! buffer; the kernel's lines go on until the freeze takes effect (writing
//! `tracing_on` takes a while in a TCG guest). A receive of a frame whose
//! fill the recorder no longer wrote is not an instrumentation mistake.
//! Seen in a 6.12 guest soak whose injected double completion was caught:
//! the verdict was `instrumentation` instead of `application`.

use xskdbg_analyzer::{analyze_reader, Options};

fn trace(unseen_before_violation: bool) -> String {
    let app = |us: u32, body: &str| {
        format!("fwd-1 [001] ..... 1.{us:06}: tracing_mark_write: xskdbg:1 {body}\n")
    };
    let krx = |us: u32, a: &str, slot: u32| {
        format!(
            "k-3 [000] ..s2. 1.{us:06}: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a={a} len=40 slot={slot:x} mode=drv\n"
        )
    };
    let mut t = String::from("# entries-in-buffer/entries-written: 12/12   #P:2\n");
    t += "k-9 [000] ..... 1.000000: tracing_mark_write: xskdbg:1 probe backend=fentry kernel=6.12 flush=exact rxslot=1 tx=0 comp=0\n";
    t += &app(
        1,
        "umem umem=1 size=400000 chunk=1000 mode=aligned headroom=0",
    );
    t += &app(2, "pool pool=1 umem=1 sk=1:2:0");
    t += &app(3, "sock sk=1:2:0 pool=1 umem=1 fd=3 label=q0");
    t += &app(4, "fill pool=1 n=2 a=0,1000");
    t += &krx(10, "100", 0);
    if unseen_before_violation {
        t += &krx(11, "5100", 1);
    }
    t += &app(20, "rx sk=1:2:0 pool=1 idx=0 n=1 d=100:40");
    t += &app(
        21,
        "violation kind=duplicate_in_flight a=1000 frame=1000 from=free to=free",
    );
    t += &app(22, "fill pool=1 n=1 a=100");
    // The recorder froze here; the kernel goes on.
    t += &krx(40, "2100", 2);
    t
}

fn rules(t: &str) -> Vec<String> {
    let r = analyze_reader(t.as_bytes(), &Options::default()).unwrap();
    r.findings.iter().map(|f| f.rule.to_string()).collect()
}

#[test]
fn a_receive_after_the_recorders_last_line_is_no_instrumentation_finding() {
    let r = rules(&trace(false));
    assert!(!r.iter().any(|x| x.contains("first-seen-in-rx")), "{r:?}");
    assert!(r.iter().any(|x| x == "recorder/violation"), "{r:?}");
}

#[test]
fn a_receive_of_an_unfilled_frame_while_the_recorder_writes_still_is() {
    let r = rules(&trace(true));
    assert!(r.iter().any(|x| x.contains("first-seen-in-rx")), "{r:?}");
}
