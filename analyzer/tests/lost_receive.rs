//! A kernel receive lost with the unknown past (its CPU's buffer started
//! later) must still retire the frame's FILL entry when the application
//! reads the frame: an entry left behind is later matched by the frame's
//! next receive, its fresh entry stays, and the end of the trace reports a
//! frame the FILL ring passed by (`frame_leak/passed-by-ring`) on a clean
//! run. Seen on a clean 10 s host soak with tracepoint probes.

use xskdbg_analyzer::{analyze_reader, Options};

/// Frame `i`'s address (chunk 0x800).
fn frame(i: u64) -> u64 {
    i * 0x800
}

#[test]
fn a_read_whose_receive_was_lost_retires_its_fill_entry_wherever_it_sits() {
    let mut t = String::from(
        "# entries-in-buffer/entries-written: 5000/9000   #P:2\n\
         app-1 [000] ..... 1.000000: tracing_mark_write: xskdbg:1 umem umem=1 size=400000 chunk=800 mode=aligned headroom=0\n\
         app-1 [000] ..... 1.000001: tracing_mark_write: xskdbg:1 pool pool=1 umem=1 sk=1:2:0\n\
         app-1 [000] ..... 1.000002: tracing_mark_write: xskdbg:1 sock sk=1:2:0 pool=1 umem=1 fd=3 label=q0\n",
    );
    let mut us = 10u64;
    // (task, CPU and flags, event): the app's marker lines, or a kernel
    // line on CPU 0.
    const APP: (&str, &str) = ("app-1 [000] .....", "tracing_mark_write");
    const K0: (&str, &str) = ("k-3 [000] ..s2.", "bpf_trace_printk");
    let mut line = |t: &mut String, (who, ev): (&str, &str), body: String| {
        us += 1;
        t.push_str(&format!("{who} 1.{us:06}: {ev}: xskdbg:1 {body}\n"));
    };
    let hex = |v: &[u64]| {
        v.iter()
            .map(|a| format!("{a:x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // 640 frames on FILL, 600 of them ahead of frame 600.
    for c in 0..10 {
        let a: Vec<u64> = (c * 64..c * 64 + 64).map(frame).collect();
        line(&mut t, APP, format!("fill pool=1 n=40 a={}", hex(&a)));
    }
    // CPU 1 (the kernel's) has not started yet: frame 600's receive is
    // lost; the app reads it (recycled out of FILL order by the kernel's
    // free list) and puts it back on FILL.
    // CPU 0 traces the kernel too (frame 639's receive ran there).
    line(
        &mut t,
        K0,
        format!("krx xs=ff00 sk=1:2:0 a={:x} len=40", frame(639) + 0x100),
    );
    line(
        &mut t,
        APP,
        format!(
            "rx sk=1:2:0 pool=1 idx=0 n=2 d={:x}:40,{:x}:40",
            frame(600) + 0x100,
            frame(639) + 0x100
        ),
    );
    // One clock for both CPUs from here: the FILL ring is topped up as
    // the kernel takes from it, so the FILL order stays short.
    let clock = std::cell::Cell::new(500_000u64);
    let tick = || {
        clock.set(clock.get() + 1);
        clock.get()
    };
    let krx = |t: &mut String, a: u64| {
        let kus = tick();
        t.push_str(&format!(
            "k-2 [001] ..s2. 1.{kus:06}: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a={:x} len=40\n",
            a + 0x100
        ));
    };
    krx(&mut t, frame(0));
    let app2 = |t: &mut String, body: String| {
        let us2 = tick();
        t.push_str(&format!(
            "app-1 [000] ..... 1.{us2:06}: tracing_mark_write: xskdbg:1 {body}\n"
        ));
    };
    app2(&mut t, format!("fill pool=1 n=1 a={:x}", frame(600)));
    // Then every frame is received in FILL order, and 1,760 more after.
    for i in (1..639).chain(640..2400) {
        if i >= 641 && (i - 641) % 64 == 0 {
            let a: Vec<u64> = (i..(i + 64).min(2400)).map(frame).collect();
            app2(&mut t, format!("fill pool=1 n={:x} a={}", a.len(), hex(&a)));
        }
        krx(&mut t, frame(i));
    }
    // ftrace prints the CPUs' buffers merged by stamp, CPU 1's (which
    // wrapped) from the line that says it started.
    let (head, mut body): (Vec<&str>, Vec<&str>) = t
        .lines()
        .partition(|l| l.starts_with('#') || l.contains(" 1.00000"));
    body.sort_by_key(|l| {
        l.split_whitespace()
            .find(|w| w.ends_with(':') && w.starts_with("1."))
            .map(str::to_string)
    });
    let first1 = body.iter().position(|l| l.contains("[001]")).unwrap();
    body.insert(first1, "##### CPU 1 buffer started ####");
    let text = head.join("\n") + "\n" + &body.join("\n") + "\n";
    if let Ok(p) = std::env::var("DUMP_TRACE") {
        std::fs::write(p, &text).unwrap();
    }
    let r = analyze_reader(text.as_bytes(), &Options::default()).expect("analyze");
    let rules: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        rules.is_empty(),
        "{rules:?}\n{:?}",
        r.findings.first().map(|f| &f.explanation)
    );
}
