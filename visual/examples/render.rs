//! Render a trace's HTML report and Perfetto JSON (development aid):
//! `cargo run -p xskdbg-visual --example render -- TRACE OUT.html [OUT.json]`.
use std::path::Path;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let f = std::fs::File::open(&a[1]).expect("open");
    let mut spool = xskdbg_visual::Spool::new().expect("spool");
    let r =
        xskdbg_analyzer::analyze_reader_with(f, &xskdbg_analyzer::Options::default(), &mut |ev| {
            spool.observe(ev)
        })
        .expect("analyze");
    let opts = xskdbg_visual::html::Options {
        input_name: a[1].rsplit('/').next().unwrap_or("").to_string(),
        ..Default::default()
    };
    xskdbg_visual::html::write_with(&r, Some(&mut spool), &opts, Path::new(&a[2])).expect("html");
    if let Some(j) = a.get(3) {
        let window = a
            .get(4)
            .map(|w| w.parse().expect("window"))
            .unwrap_or_default();
        let po = xskdbg_visual::perfetto::Options {
            window,
            input_name: opts.input_name.clone(),
            ..Default::default()
        };
        let st =
            xskdbg_visual::perfetto::write(&r, &mut spool, &po, Path::new(j)).expect("perfetto");
        eprintln!("{st:?}");
    }
}
