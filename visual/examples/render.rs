//! Render a trace's HTML report and Perfetto JSON the way `xskdbg analyze
//! --html --perfetto --window` does (development aid, and a compiled copy of
//! the integration code):
//! `cargo run -p xskdbg-visual --example render -- TRACE OUT.html [OUT.json [WINDOW]]`.

use std::path::Path;
use std::process::ExitCode;

use xskdbg_analyzer::{analyze_reader_progress, open_input, Options};
use xskdbg_visual::{html, perfetto, Spool};

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        eprintln!("usage: render TRACE OUT.html [OUT.json [WINDOW]]");
        return ExitCode::from(2);
    }
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("render: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let window: perfetto::Window = a.get(4).map(String::as_str).unwrap_or("all").parse()?;
    let input = open_input(Path::new(&a[1]))?;
    let name = input.name.clone();
    let opts = Options {
        input_name: name.clone(),
        ..Options::default()
    };
    // One spool serves both outputs.
    let mut spool = Some(Spool::new()?);
    let report = analyze_reader_progress(
        input.reader,
        &opts,
        &mut |ev| {
            if let Some(s) = spool.as_mut() {
                s.observe(ev);
            }
        },
        &mut |_| {},
    )?;
    if let Some(s) = spool.as_mut() {
        let o = html::Options {
            input_name: name.clone(),
            ..Default::default()
        };
        html::write_with(&report, Some(s), &o, Path::new(&a[2]))?;
    }
    if let (Some(out), Some(s)) = (a.get(3), spool.as_mut()) {
        let o = perfetto::Options {
            window,
            input_name: name.clone(),
            ..Default::default()
        };
        let st = perfetto::write(&report, s, &o, Path::new(out))?;
        eprintln!(
            "{out}: {} entries, {} trace events, {} findings",
            st.entries, st.trace_events, st.findings
        );
    }
    Ok(())
}
