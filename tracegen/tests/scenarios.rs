//! The generator's promises: determinism, ftrace layout, the bug of each
//! scenario at the line the sidecar names, bounded `--size` output.

use std::collections::HashMap;

use xskdbg_tracegen::{generate, write_file, Clock, Compression, Config, Scenario, Vocab};

fn gen(cfg: &Config) -> (String, xskdbg_tracegen::Expect) {
    let mut out = Vec::new();
    let e = generate(cfg, &mut out).expect("generate");
    (String::from_utf8(out).expect("utf-8"), e)
}

/// `(cpu, timestamp text)` of an entry line, `None` for header/annotations.
fn entry(line: &str) -> Option<(u32, &str)> {
    if line.starts_with('#') {
        return None;
    }
    let open = line.find("] ")?;
    let cpu = line[..open].rsplit('[').next()?.parse().ok()?;
    let rest = &line[open + 2..];
    let ts = rest.split_whitespace().nth(1)?.trim_end_matches(':');
    Some((cpu, ts))
}

fn ts_value(ts: &str) -> u64 {
    match ts.split_once('.') {
        Some((s, us)) => s.parse::<u64>().unwrap() * 1_000_000 + us.parse::<u64>().unwrap(),
        None => ts.parse().unwrap(),
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = Config::new(Scenario::Clean, 42);
    let (a, _) = gen(&cfg);
    let (b, _) = gen(&cfg);
    assert_eq!(a, b);
    let (c, _) = gen(&Config::new(Scenario::Clean, 43));
    assert_ne!(a, c);
}

#[test]
fn layout_matches_ftrace() {
    for vocab in [Vocab::Project, Vocab::Freeform] {
        let mut cfg = Config::new(Scenario::Clean, 7);
        cfg.vocab = vocab;
        let (text, e) = gen(&cfg);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# tracer: nop");
        let hdr = format!(
            "# entries-in-buffer/entries-written: {}/{}   #P:4",
            e.counts.entries, e.counts.written
        );
        assert_eq!(lines[2], hdr);
        assert!(
            e.counts.written > e.counts.entries,
            "a wrapped trace lost entries"
        );
        assert_eq!(lines.len() as u64, e.lines);
        assert_eq!(
            text.len() as u64,
            e.lines + text.lines().map(|l| l.len() as u64).sum::<u64>()
        );

        let mut entries = 0u64;
        let mut per_cpu = vec![0u64; 4];
        let mut last_ts = 0u64;
        let mut last_per_cpu: HashMap<u32, u64> = HashMap::new();
        let mut started = Vec::new();
        for l in &lines {
            if let Some(rest) = l.strip_prefix("##### CPU ") {
                started.push(rest.split(' ').next().unwrap().parse::<u32>().unwrap());
                continue;
            }
            let Some((cpu, ts)) = entry(l) else { continue };
            entries += 1;
            per_cpu[cpu as usize] += 1;
            let v = ts_value(ts);
            assert!(v >= last_ts, "timestamps go back at {l}");
            last_ts = v;
            let prev = last_per_cpu.insert(cpu, v).unwrap_or(0);
            assert!(v >= prev);
            assert!(l.len() < 4096, "line longer than a trace_marker write");
            // TASK-PID: the PID is the digits after the last dash.
            let task_pid = l[..l.find(" [").unwrap()].trim();
            let pid = task_pid.rsplit('-').next().unwrap();
            assert!(pid.chars().all(|c| c.is_ascii_digit()), "{l}");
        }
        assert_eq!(entries, e.counts.entries);
        assert_eq!(per_cpu, e.counts.per_cpu);
        // Every CPU but the one with the first entry is annotated, the last
        // CPU (the late one) included.
        started.sort();
        let first_cpu = lines.iter().find_map(|l| entry(l)).unwrap().0;
        let want: Vec<u32> = (0..4u32)
            .filter(|&c| c != first_cpu && per_cpu[c as usize] > 0)
            .collect();
        assert_eq!(started, want);
        assert_eq!(want.len(), 3, "{vocab:?}: every CPU has entries");
        assert!(e.complete_from_ns.is_some());
    }
}

#[test]
fn clean_trace_recycles_frames_and_reports_stats() {
    let (text, e) = gen(&Config::new(Scenario::Clean, 1));
    assert!(e.findings.is_empty());
    assert_eq!(e.exit_code, 0);
    assert_eq!(e.verdict, "clean");
    assert!(e.free_list_reuses > 0, "no free-list recycling happened");
    assert!(text.contains("xskdbg:1 stats sk="));
    // NAPI moved between CPUs for at least one socket, never overlapping.
    let mut cpus_per_xs: HashMap<&str, std::collections::BTreeSet<u32>> = HashMap::new();
    for l in text.lines() {
        if let (Some((cpu, _)), Some(i)) = (entry(l), l.find("krx xs=")) {
            let xs = l[i + 7..].split(' ').next().unwrap();
            cpus_per_xs.entry(xs).or_default().insert(cpu);
        }
    }
    assert!(
        cpus_per_xs.values().any(|c| c.len() > 1),
        "NAPI never migrated"
    );
}

#[test]
fn every_bug_scenario_names_its_line() {
    for sc in Scenario::ALL.into_iter().filter(|s| *s != Scenario::Clean) {
        let (text, e) = gen(&Config::new(sc, 3));
        assert_eq!(e.exit_code, 1, "{}", sc.name());
        assert!(!e.findings.is_empty(), "{}", sc.name());
        let lines: Vec<&str> = text.lines().collect();
        for f in &e.findings {
            let n = f.line.unwrap_or_else(|| panic!("{}: no line", sc.name()));
            let line = lines[(n - 1) as usize];
            let bare = f.addr.trim_start_matches("0x");
            assert!(
                line.contains(bare),
                "{}: line {n} lacks {}: {line}",
                sc.name(),
                f.addr
            );
            assert!(
                line.contains(f.ts.as_deref().unwrap()),
                "{}: {line}",
                sc.name()
            );
            let want = if sc.name().starts_with("kernel") {
                "kernel"
            } else {
                "application"
            };
            assert_eq!(f.verdict, want, "{}", sc.name());
        }
        if matches!(sc, Scenario::KernelRace | Scenario::KernelRaceStale) {
            // The recorder froze tracing right after its violation line.
            assert!(
                lines.last().unwrap().contains("violation kind="),
                "{}",
                sc.name()
            );
            assert_eq!(e.findings[0].kind, "concurrent_producer");
            assert_eq!(e.findings[0].cpus.len(), 2);
        }
    }
}

#[test]
fn kernel_race_reads_poison_or_stale() {
    let (text, e) = gen(&Config::new(Scenario::KernelRace, 5));
    assert_eq!(e.findings[1].addr, "0xdeadbeefdeadbeef");
    let rx = text.lines().rev().nth(1).unwrap();
    assert!(
        rx.contains(" rx sk=")
            && rx.ends_with(&format!(
                "deadbeefdeadbeef:{}",
                rx.rsplit(':').next().unwrap()
            ))
    );
    let (_, e) = gen(&Config::new(Scenario::KernelRaceStale, 5));
    assert_eq!(e.findings[1].kind, "rx_mismatch");
    assert_ne!(e.findings[1].addr, "0xdeadbeefdeadbeef");
}

#[test]
fn freeform_vocabulary_looks_like_the_seed() {
    let mut cfg = Config::new(Scenario::KernelRace, 2);
    cfg.vocab = Vocab::Freeform;
    let (text, e) = gen(&cfg);
    assert!(!text.contains("xskdbg:1"));
    assert!(text.contains(": __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x"));
    assert!(text.contains(": xsk_flush: (__xsk_map_flush+0x4e/0x180) xs=0x"));
    assert!(text.contains(" FILL -> RX\n"));
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("0xdeadbeefdeadbeef FILL -> RX: expected 0x"),
        "{last}"
    );
    assert!(last.contains("remaining: ["));
    assert_eq!(e.findings.len(), 2);
    // Scenarios that need kernel completions refuse the free-form vocabulary.
    let mut bad = Config::new(Scenario::AppDoubleComplete, 1);
    bad.vocab = Vocab::Freeform;
    assert!(generate(&bad, std::io::sink()).is_err());
}

#[test]
fn other_clocks() {
    let mut cfg = Config::new(Scenario::Clean, 1);
    cfg.clock = Clock::Counter;
    let (text, _) = gen(&cfg);
    let ts: Vec<u64> = text
        .lines()
        .filter_map(entry)
        .map(|(_, t)| t.parse().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[1] == w[0] + 1 || w[1] > w[0]));
    cfg.clock = Clock::X86Tsc;
    let (text, _) = gen(&cfg);
    assert!(text
        .lines()
        .filter_map(entry)
        .all(|(_, t)| !t.contains('.')));
}

#[test]
fn size_limit_streams_to_the_byte_budget() {
    let mut cfg = Config::new(Scenario::Clean, 9);
    cfg.size = Some(3 << 20);
    let mut counter = Counter(0);
    let e = generate(&cfg, &mut counter).unwrap();
    let header: u64 = 12 * 40; // generous bound on the header's size
    assert!(counter.0 >= 3 << 20);
    assert!(counter.0 < (3 << 20) + header + 4096, "{}", counter.0);
    assert_eq!(e.findings.len(), 0);
    // A bug scenario fires at 60% of the size.
    cfg.scenario = Scenario::AppDoubleFill;
    let e = generate(&cfg, std::io::sink()).unwrap();
    assert_eq!(e.findings.len(), 1);
    assert!(e.findings[0].line.unwrap() > e.lines / 2);
}

#[cfg(all(feature = "gzip", feature = "zstd"))]
#[test]
fn files_are_written_whole_and_compressed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::new(Scenario::AppLeak, 4);
    let plain = dir.path().join("t.txt");
    let e = write_file(&cfg, &plain, Compression::None).unwrap();
    let text = std::fs::read_to_string(&plain).unwrap();
    assert_eq!(text.len() as u64, e.bytes);
    let gz = dir.path().join("t.txt.gz");
    write_file(&cfg, &gz, Compression::from_path(&gz)).unwrap();
    let mut d = flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap());
    let mut back = String::new();
    std::io::Read::read_to_string(&mut d, &mut back).unwrap();
    assert_eq!(back, text);
    let zst = dir.path().join("t.txt.zst");
    write_file(&cfg, &zst, Compression::from_path(&zst)).unwrap();
    let back = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    assert_eq!(back, text.as_bytes());
    // No temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
