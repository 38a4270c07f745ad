//! Shared helpers: fixture traces, a synthetic trace generator, analysis
//! with a spool, and the test output directory.

mod chromium;
mod html;
mod perfetto;

use std::path::{Path, PathBuf};

use xskdbg_analyzer::{analyze_reader_with, Options, Report};
use xskdbg_visual::Spool;

/// `fixtures/traces` of the repository.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/traces")
}

/// Every `*.txt` fixture trace, sorted.
pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/traces exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    assert!(
        !v.is_empty(),
        "no fixture traces in {}",
        fixtures_dir().display()
    );
    v
}

/// Analyze trace text, spooling its entries.
pub fn analyze_text(text: &str) -> (Report, Spool) {
    try_analyze(text.as_bytes()).expect("analyze")
}

fn try_analyze(bytes: &[u8]) -> Result<(Report, Spool), xskdbg_analyzer::Error> {
    let mut spool = Spool::new().expect("spool");
    let report = analyze_reader_with(bytes, &Options::default(), &mut |ev| spool.observe(ev))?;
    Ok((report, spool))
}

/// Analyze a trace file (any bytes: fixtures include invalid UTF-8),
/// spooling its entries.
pub fn analyze_file(p: &Path) -> (Report, Spool) {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    try_analyze(&bytes).unwrap_or_else(|e| panic!("analyze {}: {e}", p.display()))
}

/// Every fixture the analyzer accepts, analyzed (those that are not traces
/// at all, like `not-a-trace.txt`, are the analyzer's business).
pub fn fixture_reports() -> Vec<(PathBuf, Report, Spool)> {
    fixtures()
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            match try_analyze(&bytes) {
                Ok((r, s)) => Some((p, r, s)),
                Err(e @ xskdbg_analyzer::Error::NoEntries { .. }) => {
                    eprintln!("{}: not a trace ({e})", p.display());
                    None
                }
                Err(e) => panic!("analyze {}: {e}", p.display()),
            }
        })
        .collect()
}

/// A directory under the cargo target dir for this test's output files
/// (HTML, JSON, screenshots), kept after the run for inspection.
pub fn out_dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("visual")
        .join(test);
    std::fs::create_dir_all(&d).expect("create test output dir");
    d
}

/// File stem of a fixture (`seed-race`).
pub fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A synthetic trace in the project format (docs/TRACE-FORMAT.md): `packets`
/// receive → forward → complete → refill cycles of one socket whose kernel
/// side alternates between CPUs 1 and 2 while the application runs on CPU 0.
/// With `double_fill`, the application puts one frame on FILL twice halfway
/// through (an application bug).
pub fn synthetic_trace(packets: u64, double_fill: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("# tracer: nop\n#\n");
    let mut ns: u64 = 5_000_000_000;
    let line = |s: &mut String, cpu: u32, task: &str, body: &str, ns: &mut u64| {
        *ns += 700 + (*ns % 7) * 130;
        let _ = writeln!(
            s,
            "{task:>16} [{cpu:03}] ..... {}.{:09}: {}",
            *ns / 1_000_000_000,
            *ns % 1_000_000_000,
            body
        );
    };
    let app = "fwd-4242";
    let m = |b: &str| format!("tracing_mark_write: xskdbg:1 {b}");
    let k = |b: &str| format!("bpf_trace_printk: xskdbg:1 {b}");
    line(
        &mut s,
        0,
        app,
        &m("umem umem=1 size=200000 chunk=800 mode=aligned"),
        &mut ns,
    );
    line(&mut s, 0, app, &m("pool pool=1 umem=1 sk=1:5:1"), &mut ns);
    line(
        &mut s,
        0,
        app,
        &m("sock sk=1:5:1 pool=1 umem=1 label=ingress q:1"),
        &mut ns,
    );
    let frames: Vec<u64> = (0..16u64).map(|i| 0x10000 + i * 0x800).collect();
    let list = frames
        .iter()
        .map(|f| format!("{f:x}"))
        .collect::<Vec<_>>()
        .join(",");
    line(
        &mut s,
        0,
        app,
        &m(&format!(
            "fill pool=1 sk=1:5:1 n={:x} a={list}",
            frames.len()
        )),
        &mut ns,
    );
    let xs = "ffff888012340000";
    for p in 0..packets {
        let f = frames[(p % frames.len() as u64) as usize];
        let a = f + 0x100;
        let kcpu = 1 + (p / 4 % 2) as u32;
        let soft = if kcpu == 1 {
            "ksoftirqd/1-20"
        } else {
            "iperf3-777"
        };
        line(
            &mut s,
            kcpu,
            soft,
            &k(&format!("krx xs={xs} sk=1:5:1 a={a:x} len=40 slot={p:x}")),
            &mut ns,
        );
        line(
            &mut s,
            kcpu,
            soft,
            &k(&format!("kflush xs={xs} sk=1:5:1 prod={:x}", p + 1)),
            &mut ns,
        );
        line(
            &mut s,
            0,
            app,
            &m(&format!("rx sk=1:5:1 pool=1 idx={p:x} n=1 d={a:x}:40")),
            &mut ns,
        );
        line(
            &mut s,
            0,
            app,
            &m(&format!("tx sk=1:5:1 idx={p:x} n=1 d={a:x}:40")),
            &mut ns,
        );
        line(
            &mut s,
            kcpu,
            soft,
            &k(&format!("ktx xs={xs} sk=1:5:1 a={a:x} len=40")),
            &mut ns,
        );
        line(
            &mut s,
            kcpu,
            soft,
            &k(&format!("kcomp xs={xs} sk=1:5:1 n=1 a={a:x}")),
            &mut ns,
        );
        line(
            &mut s,
            0,
            app,
            &m(&format!("comp pool=1 sk=1:5:1 n=1 a={a:x}")),
            &mut ns,
        );
        line(
            &mut s,
            0,
            app,
            &m(&format!("fill pool=1 sk=1:5:1 n=1 a={f:x}")),
            &mut ns,
        );
        if double_fill && p == packets / 2 {
            line(
                &mut s,
                0,
                app,
                &m(&format!("fill pool=1 sk=1:5:1 n=1 a={f:x}")),
                &mut ns,
            );
        }
    }
    s
}
