//! A program that closes its socket and its UMEM and opens new ones on the
//! same queue (6.12's xskxceiver TEARDOWN: ten rounds): the new socket has
//! the old one's `sk=`, the kernel may give it the old one's `xs`, and its
//! UMEM's addresses are the old UMEM's. Without the recorder's
//! `sock ... gone=1` the new socket's receives were joined to the old
//! socket, so to the old UMEM, whose frames the app still held: false
//! `duplicate_in_flight/rx-twice`, verdict KERNEL.

mod common;

use common::{app, declare_q0};
use xskdbg_analyzer::{analyze_reader, Options};

/// One round: a UMEM, its socket, 4 frames filled, received and read, and
/// (with `gone`) the socket's end. The app keeps what it read (the test's
/// last round checks nothing else).
fn round(t: &mut String, n: u64, gone: bool) {
    let us = n * 100;
    let mut l = |k: u64, who: &str, ev: &str, body: String| {
        t.push_str(&format!("{who} 1.{:06}: {ev}: xskdbg:1 {body}\n", us + k));
    };
    const APP: &str = "app-1 [000] .....";
    const K: &str = "k-3 [001] ..s2.";
    let sid = 0x100 + n;
    l(
        0,
        APP,
        "tracing_mark_write",
        format!("umem umem={n:x} size=400000 chunk=1000 mode=aligned headroom=0"),
    );
    l(
        1,
        APP,
        "tracing_mark_write",
        format!("pool pool={n:x} umem={n:x} sk=1:2:0"),
    );
    l(
        2,
        APP,
        "tracing_mark_write",
        format!("sock sk=1:2:0 sid={sid:x} pool={n:x} umem={n:x} fd=3 label=q0"),
    );
    l(
        3,
        APP,
        "tracing_mark_write",
        format!("fill pool={n:x} n=4 a=0,1000,2000,3000"),
    );
    for i in 0..4u64 {
        l(
            4 + i,
            K,
            "bpf_trace_printk",
            format!(
                "krx xs=ff00 sk=1:2:0 a={:x} len=40 slot={i:x} mode=drv",
                i * 0x1000 + 0x100
            ),
        );
    }
    l(
        10,
        APP,
        "tracing_mark_write",
        format!("rx sk=1:2:0 sid={sid:x} pool={n:x} idx=0 n=4 d=100:40,1100:40,2100:40,3100:40"),
    );
    l(
        11,
        APP,
        "tracing_mark_write",
        format!("free umem={n:x} n=4 a=0,1000,2000,3000"),
    );
    if gone {
        l(
            12,
            APP,
            "tracing_mark_write",
            format!("sock sk=1:2:0 sid={sid:x} pool={n:x} umem={n:x} gone=1"),
        );
    }
}

fn trace(gone: bool) -> String {
    let mut t = String::from("# entries-in-buffer/entries-written: 100/100   #P:2\n");
    for n in 1..=3 {
        round(&mut t, n, gone);
    }
    t
}

#[test]
fn a_socket_gone_frees_its_key_and_its_kernel_socket_for_the_next_one() {
    let r = analyze_reader(trace(true).as_bytes(), &Options::default()).unwrap();
    assert!(r.findings.is_empty(), "{}", r.to_json());
    let krx: u64 = r.summary.sockets.iter().map(|s| s.krx).sum();
    assert_eq!(krx, 12, "{}", r.to_json());
}

#[test]
fn without_the_end_the_next_socket_is_not_blamed_on_the_kernel() {
    // The old recording: the analyzer cannot tell the rounds apart, and
    // must not turn that into a kernel bug.
    let r = analyze_reader(trace(false).as_bytes(), &Options::default()).unwrap();
    for f in &r.findings {
        assert_ne!(format!("{:?}", f.verdict), "Kernel", "{}", r.to_json());
    }
}

/// A socket known only from kernel lines (its declaration overwritten, or
/// a capture that starts mid-run), then the next socket's first
/// declaration on its key, in SKB mode, the application reading and
/// refilling one packet at a time: the new socket's kernel socket must be
/// joined to it, or the SKB read-ahead cannot place a receive whose line
/// sorts after the read and refill of its frame, and that receive takes the
/// refilled frame from FILL again (a false `rx-twice`, KERNEL, on the next).
#[test]
fn a_first_declaration_does_not_keep_the_old_sockets_kernel_socket() {
    let krx = |ts: &str, xs: &str, a: &str, slot: u32| {
        format!(
            "k-3 [000] ..s2. {ts}: bpf_trace_printk: xskdbg:1 krx xs={xs} sk=1:2:0 a={a} len=40 slot={slot:x} mode=skb\n"
        )
    };
    let mut t = String::from("# entries-in-buffer/entries-written: 14/14   #P:2\n");
    t += &krx("1.000001", "ff00", "100", 7);
    t += &declare_q0(["1.000010", "1.000011", "1.000012"]);
    t += &app("1.000013", "fill pool=1 n=2 a=1000,2000");
    t += &krx("1.000100", "ff80", "1100", 0);
    t += &app(
        "1.000200",
        "rx sk=1:2:0 sid=11 pool=1 idx=0 n=1 d=1100:40 prod=1",
    );
    t += &app("1.000201", "fill pool=1 n=1 a=1000");
    // Read and refilled in the microsecond of its receive, whose line
    // comes after both.
    t += &app(
        "1.000300",
        "rx sk=1:2:0 sid=11 pool=1 idx=1 n=1 d=2100:40 prod=2",
    );
    t += &app("1.000300", "fill pool=1 n=1 a=2000");
    t += &krx("1.000300", "ff80", "2100", 1);
    t += &krx("1.000400", "ff80", "2100", 2);
    t += &app(
        "1.000500",
        "rx sk=1:2:0 sid=11 pool=1 idx=2 n=1 d=2100:40 prod=3",
    );
    t += &app("1.000501", "fill pool=1 n=1 a=2000");
    let r = analyze_reader(t.as_bytes(), &Options::default()).unwrap();
    assert!(r.findings.is_empty(), "{}", r.to_json());
}
