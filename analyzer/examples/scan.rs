//! Analyze one trace with the library alone and print the summary line:
//! `cargo run --release -p xskdbg-analyzer --example scan -- TRACE`.
//! Used to measure the parser and checkers without the CLI around them:
//! `SCAN_PARSE_ONLY=1` reads and parses only, `SCAN_SERIAL=1` parses and
//! checks on one thread (the default overlaps them on two).

use std::time::Instant;

use xskdbg_analyzer::{open_input, Options};

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: scan TRACE");
        std::process::exit(2);
    };
    let start = Instant::now();
    let input = match open_input(std::path::Path::new(&path)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("scan: {e}");
            std::process::exit(2);
        }
    };
    let size = input.file_size.unwrap_or(0);
    if std::env::var_os("SCAN_PARSE_ONLY").is_some() {
        // Reader and parser only: the floor under the checkers.
        let mut r = xskdbg_analyzer::TraceReader::new(input.reader);
        let mut n = 0u64;
        while let Ok(Some(l)) = r.next_line() {
            if matches!(l, xskdbg_analyzer::Line::Event(_)) {
                n += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{n} events parsed, {secs:.2} s, {:.0} MB/s",
            size as f64 / secs / 1e6
        );
        return;
    }
    let result = if std::env::var_os("SCAN_SERIAL").is_some() {
        // Parse and check on one thread: minus the parse-only time, this is
        // what the checkers cost (the default pipeline overlaps the two).
        let mut r = xskdbg_analyzer::TraceReader::new(input.reader);
        let mut a = xskdbg_analyzer::Analyzer::new(Options::default());
        while let Ok(Some(l)) = r.next_line() {
            a.feed_line(&l);
        }
        a.finish_checked()
    } else {
        xskdbg_analyzer::analyze_input(input, &Options::default(), &mut |_| {}, &mut |_| {})
    };
    match result {
        Ok(r) => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{} lines, {} events, {} findings ({:?}), {:.2} s, {:.0} MB/s, checker thread {:.2} CPU s",
                r.summary.lines,
                r.summary.events,
                r.findings.len(),
                r.summary.verdict,
                secs,
                size as f64 / secs / 1e6,
                thread_cpu_secs()
            );
        }
        Err(e) => {
            eprintln!("scan: {e}");
            std::process::exit(2);
        }
    }
}

/// CPU time of the calling thread (user + system) from
/// `/proc/thread-self/stat`, in seconds (10 ms resolution): what the
/// checkers cost even when other processes compete for the cores.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
