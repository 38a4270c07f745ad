//! A call the application forgot: a batch put on TX, read from RX or put on
//! FILL without telling the recorder. The kernel's records then disagree
//! with the application's, and a kernel rule that trusts the record to be
//! complete blames the kernel: the worst output this tool can give. These
//! tests take real clean traces and leave one call out the way the program
//! would have written the trace without it (its recorder numbers `seq=` and
//! self-counted `idx=` values without a gap), and check that nothing blames
//! the kernel; and that the same rules still do when the kernel's own
//! records convict it.

mod common;

use std::io::Read as _;

use common::{app, declare_q0};
use xskdbg_analyzer::{analyze_reader, Options, Report};

fn analyze(t: &[u8]) -> Report {
    analyze_reader(t, &Options::default()).unwrap()
}

fn real(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fixtures/traces/real/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if !name.ends_with(".gz") {
        return raw;
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The value of `key=` (hex) in `line` and where it is.
fn field(line: &str, key: &str) -> Option<(usize, usize, u64)> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let end = line[at..].find(' ').map_or(line.len(), |e| at + e);
    Some((at, end, u64::from_str_radix(&line[at..end], 16).ok()?))
}

fn set(line: &str, key: &str, f: impl Fn(u64) -> u64) -> String {
    match field(line, key) {
        Some((at, end, v)) => format!("{}{:x}{}", &line[..at], f(v), &line[end..]),
        None => line.to_string(),
    }
}

/// `trace` without the one line containing `call`, as if the program had
/// never made that call: the recorder's later `seq=` close up, and for an
/// `rx`/`tx` line without `prod=` (an index the recorder counts itself)
/// so do the same socket's later indices.
fn forget(trace: &[u8], call: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(trace);
    let lines: Vec<&str> = text.split('\n').collect();
    let hits: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(call))
        .collect();
    assert_eq!(hits.len(), 1, "{call:?} must name one line");
    let gone = lines[hits[0]];
    let seq = field(gone, "seq").map(|(_, _, s)| s);
    let body = &gone[gone.find("xskdbg:1 ").expect("a recorder line") + 9..];
    let op = body.split(' ').next().unwrap().to_string();
    let counted = (op == "rx" || op == "tx") && !gone.contains(" prod=");
    let sk = body
        .split(' ')
        .find_map(|w| w.strip_prefix("sk="))
        .map(str::to_string);
    let n = field(gone, "n").map_or(0, |(_, _, n)| n);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == hits[0] {
            continue;
        }
        let mut l = l.to_string();
        if i > hits[0] {
            if let Some(s0) = seq {
                l = set(&l, "seq", |s| {
                    if s > s0 && s >> 32 == s0 >> 32 {
                        s - 1
                    } else {
                        s
                    }
                });
            }
            let same = sk.as_ref().is_some_and(|sk| {
                l.contains(&format!("xskdbg:1 {op} ")) && l.contains(&format!(" sk={sk} "))
            });
            if counted && same {
                l = set(&l, "idx", |x| x.wrapping_sub(n) & 0xffff_ffff);
            }
        }
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out.pop();
    out
}

/// Every rule and verdict of the report, consequences and `also` included.
fn verdicts(r: &Report) -> Vec<(String, String)> {
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let mut out = Vec::new();
    for f in j["findings"].as_array().unwrap() {
        for g in std::iter::once(f)
            .chain(f["also"].as_array().into_iter().flatten())
            .chain(f["consequences"].as_array().into_iter().flatten())
        {
            if let (Some(rule), Some(v)) = (g["rule"].as_str(), g["verdict"].as_str()) {
                out.push((rule.to_string(), v.to_string()));
            }
        }
    }
    out
}

/// No verdict, `also` or consequence of `r` says `who`.
fn none_say(r: &Report, who: &str) {
    let v = verdicts(r);
    assert!(
        v.iter().all(|(_, v)| v != who),
        "a forgotten call blamed on the {who}: {v:?}\n{}",
        r.to_json()
    );
}

fn no_kernel(r: &Report) {
    none_say(r, "kernel");
}

/// Nor on the application: the program's mistake is in its recording.
fn no_application(r: &Report) {
    none_say(r, "application");
}

fn has(r: &Report, rule: &str, verdict: &str) {
    let v = verdicts(r);
    assert!(
        v.iter().any(|(r, x)| r == rule && x == verdict),
        "no {rule} ({verdict}) in {v:?}"
    );
}

#[test]
fn the_fixtures_are_clean_with_every_call() {
    for name in [
        "guest-rx-full-kprobe.txt",
        "host-skb-clean-tracepoint.txt",
        "host-teardown-oldrec-midrun-tracepoint.txt.gz",
        "host-inv-desc-2k-instrumented-tracepoint.txt.gz",
        "guest-rx-full-seed-probes.txt",
    ] {
        let r = analyze(&real(name));
        assert!(r.findings.is_empty(), "{name}: {}", r.to_json());
    }
}

/// A send not recorded: the kernel's `ktx` read the frame from TX before it
/// completed it (kprobe backend, Debian 6.1 guest).
#[test]
fn a_send_left_out_is_not_the_kernels_completion_of_a_frame_never_sent() {
    let r = left_out(
        "guest-rx-full-kprobe.txt",
        "tx sk=4:1267:0 pool=2 idx=1 n=1 d=23100:80",
        "invalid_transition/kcomp-tx-unrecorded",
    );
    says(
        &r,
        &[
            "after reading it from TX at line 367",
            "a forgotten tx call",
        ],
    );
}

/// Without the kernel's read from TX, its completion of a frame it was not
/// sending stays the kernel's.
#[test]
fn a_completion_the_kernel_never_read_from_tx_stays_the_kernels() {
    let t = forget(
        &real("guest-rx-full-kprobe.txt"),
        "tx sk=4:1267:0 pool=2 idx=1 n=1 d=23100:80",
    );
    let t = forget(&t, "ktx kpool=ff47de5b62913d00 a=23100 at=raw");
    let r = analyze(&t);
    has(&r, "invalid_transition/kcomp-not-sent", "kernel");
}

/// An RX batch read but not recorded, the recorder counting the indices
/// (`Sock::rx`): every later read sits one index before the kernel's slot
/// of its frame (tracepoint backend, SKB mode, 6.18 host).
#[test]
fn a_read_left_out_is_not_the_kernel_writing_the_wrong_slot() {
    let r = left_out(
        "host-skb-clean-tracepoint.txt",
        "rx sk=1105:1267:0 pool=1 idx=4b n=1 d=45900:5ea",
        "rx_mismatch/index",
    );
    // The frame read unrecorded then went on TX: the record showed it
    // still in RX, but the later reads show its slot read.
    no_application(&r);
    has(
        &r,
        "invalid_transition/app-into-kernel-owned",
        "inconclusive",
    );
}

/// The same without RX slots (the seed story's perf probes on the 6.1
/// guest): receives and reads are matched in order, and the read frame's
/// receive is still unread further on.
#[test]
fn a_read_left_out_without_slots_is_not_the_kernel_either() {
    left_out(
        "guest-rx-full-seed-probes.txt",
        "rx sk=2:1267:0 pool=1 idx=3 n=20 ",
        "rx_mismatch/index",
    );
}

/// A COMPLETION read not recorded (tracepoint backend: kernel completions
/// not traced): the frame seems still on TX when the program frees it, the
/// AF_XDP FAQ's reuse before completion; but a frame sent after it comes
/// back next, and completions come back in TX order.
#[test]
fn a_completion_read_left_out_is_not_a_reuse_before_completion() {
    let r = left_out(
        "host-skb-clean-tracepoint.txt",
        "comp pool=1 n=1 a=25900",
        "invalid_transition/app-reuses-kernel-owned",
    );
    no_application(&r);
    says(&r, &["a forgotten comp call"]);
}

/// A FILL not recorded (xskxceiver with the recorder's C API, tracepoint
/// backend, 6.18 host): the kernel receives a frame the record shows the
/// program holding.
#[test]
fn a_fill_left_out_is_not_the_kernel_handing_out_a_held_frame() {
    let r = left_out(
        "host-teardown-oldrec-midrun-tracepoint.txt.gz",
        "fill seq=789400000025fe pool=5 n=1 a=78100",
        "invalid_transition/not-from-fill-held",
    );
    says(
        &r,
        &[
            "held by the app after RX since line 419",
            "a forgotten fill call",
        ],
    );
}

/// A send not recorded in a program whose recorder checks in-process
/// (xskxceiver's invalid-descriptor test with the C API, 6.18 host): its
/// own report of a frame it had freed coming back on COMPLETION.
#[test]
fn the_recorders_report_of_a_held_frame_coming_back_is_not_the_kernels() {
    let r = left_out(
        "host-inv-desc-2k-instrumented-tracepoint.txt.gz",
        "tx seq=38b70000000011 ",
        "recorder/violation",
    );
    says(&r, &["a forgotten tx call"]);
}

/// Every clean real fixture, one recorder call left out at a time, at
/// evenly spaced lines (`scripts/forgotten-calls.py` does the same at
/// random and at any number of lines): nothing says `kernel`.
#[test]
fn no_single_forgotten_call_in_a_clean_real_trace_blames_the_kernel() {
    const PER_FIXTURE: usize = 12;
    let dir = format!("{}/../fixtures/traces/real", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".expected.json")?.to_string();
            let exp = std::fs::read_to_string(format!("{dir}/{name}")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&exp).ok()?;
            (v["verdict"] == "clean").then_some(stem)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "clean real fixtures: {names:?}");
    let decl = [
        " umem ",
        " pool ",
        " sock ",
        " probe ",
        " kdrain",
        " stats ",
        " audit",
        " violation ",
    ];
    let mut tried = 0;
    for stem in &names {
        let file = ["txt", "txt.gz"]
            .iter()
            .map(|e| format!("{stem}.{e}"))
            .find(|f| std::path::Path::new(&format!("{dir}/{f}")).exists())
            .unwrap();
        let trace = real(&file);
        let text = String::from_utf8_lossy(&trace).into_owned();
        let calls: Vec<&str> = text
            .split('\n')
            .filter(|l| {
                l.contains("xskdbg:1 ")
                    && !l.contains("xskdbg:1 k")
                    && !decl.iter().any(|d| l.contains(d))
            })
            .collect();
        let step = (calls.len() / PER_FIXTURE).max(1);
        for call in calls.iter().step_by(step).take(PER_FIXTURE) {
            // The line itself names it: the same text twice (a stamp shared
            // by two identical lines) is skipped.
            if text.matches(call).count() != 1 {
                continue;
            }
            let r = analyze(&forget(&trace, call));
            let v = verdicts(&r);
            assert!(
                v.iter().all(|(_, v)| v != "kernel"),
                "{file} without {call:?}: {v:?}"
            );
            tried += 1;
        }
    }
    assert!(tried >= 100, "only {tried} calls left out");
}

/// `fixture` without the line of `call`: nothing blames the kernel, and
/// `rule` says inconclusive.
fn left_out(fixture: &str, call: &str, rule: &str) -> Report {
    let r = analyze(&forget(&real(fixture), call));
    no_kernel(&r);
    has(&r, rule, "inconclusive");
    r
}

fn says(r: &Report, words: &[&str]) {
    let j = r.to_json();
    for w in words {
        assert!(j.contains(w), "no {w:?} in {j}");
    }
}

/// With the kernel's completions traced: two sends completed in order,
/// the program frees the first without having recorded taking it from
/// COMPLETION, then records taking the second.
#[test]
fn a_traced_completion_read_left_out_is_cleared_by_the_next_one() {
    // One CPU: every line is judged from the first.
    let k =
        |ts: &str, body: &str| format!("k-2 [001] ..s2. {ts}: bpf_trace_printk: xskdbg:1 {body}\n");
    let head = app(
        "1.000000",
        "probe backend=fentry kernel=6.1.0 flush=exact rxslot=1 tx=1 comp=1",
    ) + &declare_q0(["1.000001", "1.000002", "1.000003"])
        + &app("1.000010", "fill pool=1 n=1 a=8000")
        + &app(
            "1.000020",
            "tx sk=1:2:0 sid=11 pool=1 idx=0 n=2 d=1000:40,2000:40",
        )
        + &k("1.000030", "ktx xs=ff00 sk=1:2:0 a=1000")
        + &k("1.000031", "ktx xs=ff00 sk=1:2:0 a=2000")
        + &k("1.000040", "kcomp xs=ff00 sk=1:2:0 n=2 a=1000,2000")
        + &app("1.000050", "free umem=1 n=1 a=1000");
    // Alone, the free of a frame whose completion was never taken is the
    // application's: nothing later says otherwise.
    let r = analyze(head.as_bytes());
    has(
        &r,
        "invalid_transition/app-reuses-kernel-owned",
        "application",
    );
    let t = head + &app("1.000060", "comp pool=1 n=1 a=2000");
    let r = analyze(t.as_bytes());
    no_kernel(&r);
    no_application(&r);
    has(
        &r,
        "invalid_transition/app-reuses-kernel-owned",
        "inconclusive",
    );
    says(&r, &["a forgotten comp call"]);
}

fn krx(ts: &str, a: &str, slot: u32) -> String {
    format!(
        "k-2 [000] ..s2. {ts}: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a={a} len=40 slot={slot:x} mode=drv\n\
         k-2 [000] ..s2. {ts}: bpf_trace_printk: xskdbg:1 kflush xs=ff00 sk=1:2:0 prod={:x}\n",
        slot + 1
    )
}

/// One frame received and read, then `then`, then received again.
fn received_again(then: &str) -> String {
    declare_q0(["1.000001", "1.000002", "1.000003"])
        + &app("1.000010", "fill pool=1 n=2 a=1000,2000")
        + &krx("1.000020", "1000", 0)
        + &app("1.000030", "rx sk=1:2:0 sid=11 pool=1 idx=0 n=1 d=1000:40")
        + &app("1.000040", then)
        + &krx("1.000050", "1000", 1)
}

#[test]
fn a_frame_received_while_the_program_holds_it_is_inconclusive() {
    let r = analyze(received_again("free umem=1 n=1 a=1000").as_bytes());
    no_kernel(&r);
    has(&r, "invalid_transition/not-from-fill-held", "inconclusive");
}

/// On TX the frame is the kernel's: receiving it is the kernel's doing
/// however complete the record of FILL is.
#[test]
fn a_frame_received_while_on_tx_stays_the_kernels() {
    let r = analyze(received_again("tx sk=1:2:0 sid=11 pool=1 idx=0 n=1 d=1000:40").as_bytes());
    has(&r, "invalid_transition/not-from-fill", "kernel");
}
