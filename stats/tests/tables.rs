//! The statistics tables on generated traces: counts must equal what the
//! generator wrote (it counts independently, while writing), latencies
//! must equal hand-computed values on a small hand-written trace.

use std::io::Cursor;

use polars::prelude::*;
use xskdbg_analyzer::{analyze_reader_with, Options};
use xskdbg_stats::{Collector, Tables};
use xskdbg_tracegen::{generate, Config, Scenario, Vocab};

fn collect(trace: &[u8]) -> Collector {
    let mut c = Collector::new(None, false);
    analyze_reader_with(Cursor::new(trace), &Options::default(), &mut |ev| {
        c.observe(ev)
    })
    .expect("analyze");
    c
}

fn col_u64(df: &DataFrame, name: &str) -> Vec<u64> {
    df.column(name)
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn col_str(df: &DataFrame, name: &str) -> Vec<String> {
    let ca = df.column(name).unwrap().str().unwrap();
    (0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_string())
        .collect()
}

fn generated(cfg: &Config) -> (Vec<u8>, xskdbg_tracegen::Expect) {
    let mut out = Vec::new();
    let e = generate(cfg, &mut out).unwrap();
    (out, e)
}

#[test]
fn counts_equal_the_generators() {
    for sc in [
        Scenario::Clean,
        Scenario::KernelRace,
        Scenario::AppDoubleFill,
    ] {
        let (trace, e) = generated(&Config::new(sc, 11));
        let c = collect(&trace);
        assert_eq!(c.events(), e.counts.entries, "{}", sc.name());
        let t: Tables = c.tables().unwrap();

        let cpus: Vec<u32> = t
            .per_cpu
            .column("cpu")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let events = col_u64(&t.per_cpu, "events");
        let want: Vec<(u32, u64)> = e
            .counts
            .per_cpu
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u32, *n))
            .collect();
        assert_eq!(
            cpus.into_iter().zip(events).collect::<Vec<_>>(),
            want,
            "{}",
            sc.name()
        );

        let kinds = col_str(&t.per_kind, "kind");
        let kev = col_u64(&t.per_kind, "events");
        let kd = col_u64(&t.per_kind, "descriptors");
        let mut got: Vec<(String, u64, u64)> = kinds
            .into_iter()
            .zip(kev)
            .zip(kd)
            .map(|((k, n), d)| (k, n, d))
            .collect();
        got.sort();
        let want: Vec<(String, u64, u64)> = e
            .counts
            .per_op
            .iter()
            .map(|(k, n)| (k.clone(), *n, e.counts.descs_per_op[k]))
            .collect();
        assert_eq!(got, want, "{}", sc.name());

        let socks = col_str(&t.per_socket, "socket");
        let sev = col_u64(&t.per_socket, "events");
        let got: Vec<(String, u64)> = socks.into_iter().zip(sev).collect();
        let want: Vec<(String, u64)> = e
            .counts
            .per_socket
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        assert_eq!(got, want, "{}", sc.name());
        let labels = col_str(&t.per_socket, "label");
        assert_eq!(labels, e.sockets.values().cloned().collect::<Vec<_>>());
    }
}

#[test]
fn latencies_are_exact_on_a_small_trace() {
    // Two frames through FILL -> RX -> TX -> COMP on socket 1:5:0, times in
    // microseconds, so latencies in ns are multiples of 1000.
    let lines = [
        "  app-1  [001] ..... 100.000010: tracing_mark_write: xskdbg:1 umem umem=1 size=100000 chunk=1000 mode=aligned",
        "  app-1  [001] ..... 100.000020: tracing_mark_write: xskdbg:1 sock sk=1:5:0 pool=1 umem=1 label=ingress q:0",
        "  app-1  [001] ..... 100.000100: tracing_mark_write: xskdbg:1 fill pool=1 sk=1:5:0 n=2 a=1000,2000",
        "  app-1  [001] ..... 100.000150: tracing_mark_write: xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1100:40",
        "  app-1  [001] ..... 100.000400: tracing_mark_write: xskdbg:1 rx sk=1:5:0 pool=1 idx=1 n=1 d=2100:40",
        "  app-1  [001] ..... 100.000410: tracing_mark_write: xskdbg:1 tx sk=1:5:0 idx=0 n=2 d=1100:40,2100:40",
        "  app-1  [002] ..... 100.000500: tracing_mark_write: xskdbg:1 comp pool=1 sk=1:5:0 n=1 a=1100",
        "  app-1  [002] ..... 100.001410: tracing_mark_write: xskdbg:1 comp pool=1 sk=1:5:0 n=1 a=2100",
    ];
    let trace = lines.join("\n") + "\n";
    let t = collect(trace.as_bytes()).tables().unwrap();
    assert_eq!(t.unit, "ns");
    assert!(t.exact);
    let l = &t.latency;
    assert_eq!(col_str(l, "stage"), ["FILL->RX", "RX->TX", "TX->COMP"]);
    assert_eq!(col_str(l, "socket"), ["1:5:0"; 3]);
    assert_eq!(col_str(l, "label"), ["ingress q:0"; 3]);
    assert_eq!(col_u64(l, "samples"), [2, 2, 2]);
    // FILL->RX: 50us and 300us; RX->TX: 260us and 10us; TX->COMP: 90us, 1000us.
    assert_eq!(col_u64(l, "p50_ns"), [50_000, 10_000, 90_000]);
    assert_eq!(col_u64(l, "p99_ns"), [300_000, 260_000, 1_000_000]);
    assert_eq!(col_u64(l, "max_ns"), [300_000, 260_000, 1_000_000]);
    assert_eq!(col_u64(l, "mean_ns"), [175_000, 135_000, 545_000]);
    assert_eq!(col_u64(&t.per_cpu, "events"), [6, 2]);
    assert_eq!(
        col_u64(&t.per_cpu, "first_ts_ns"),
        [100_000_010_000, 100_000_500_000]
    );
}

#[test]
fn counter_clocks_are_reported_in_clock_units() {
    let mut cfg = Config::new(Scenario::Clean, 2);
    cfg.clock = xskdbg_tracegen::Clock::Counter;
    let (trace, _) = generated(&cfg);
    let t = collect(&trace).tables().unwrap();
    assert_eq!(t.unit, "clock");
    assert!(t.latency.column("p50_clock").is_ok());
    assert!(t.latency.height() > 0);
}

#[test]
fn freeform_trace_counts_and_latencies() {
    let mut cfg = Config::new(Scenario::Clean, 5);
    cfg.vocab = Vocab::Freeform;
    let (trace, e) = generated(&cfg);
    let c = collect(&trace);
    assert_eq!(c.events(), e.counts.entries);
    let t = c.tables().unwrap();
    let kinds = col_str(&t.per_kind, "kind");
    let kev = col_u64(&t.per_kind, "events");
    for (k, n) in kinds.iter().zip(&kev) {
        assert_eq!(e.counts.per_op.get(k), Some(n), "{k}");
    }
    // App lines name sockets by label; each label is a row with latencies.
    let socks = col_str(&t.per_socket, "socket");
    for label in e.sockets.values() {
        assert!(socks.contains(&format!("label={label}")), "{socks:?}");
    }
    let stages = col_str(&t.latency, "stage");
    for s in ["FILL->RX", "RX->TX", "TX->COMP"] {
        assert!(stages.iter().any(|x| x == s), "{stages:?}");
    }
}

#[test]
fn export_writes_four_csv_files() {
    let (trace, e) = generated(&Config::new(Scenario::Clean, 3));
    let t = collect(&trace).tables().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stats");
    let files = t.export(&out).unwrap();
    assert_eq!(files.len(), 4);
    let cpu = std::fs::read_to_string(out.join("per_cpu.csv")).unwrap();
    let mut lines = cpu.lines();
    assert_eq!(lines.next(), Some("cpu,events,first_ts_ns,last_ts_ns"));
    let total: u64 = lines
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, e.counts.entries);
    let lat = std::fs::read_to_string(out.join("latency.csv")).unwrap();
    assert!(lat.starts_with("socket,label,stage,samples,p50_ns,p99_ns,max_ns,mean_ns\n"));
    assert_eq!(lat.lines().count() as u64, 1 + 3 * e.sockets.len() as u64);
    // Nothing but the four files (temporary files renamed away).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);
    let mut text = Vec::new();
    t.print(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("Events per CPU") && text.contains("FILL->RX"));
}
