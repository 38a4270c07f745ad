//! The HTML report opened in headless Chromium: the script runs, the SVG
//! lanes and the highlighted events exist in the live DOM, and a screenshot
//! shows them (saved under the test output directory).
//!
//! Needs Debian's `chromium` (installed by `scripts/setup.sh`); set
//! `XSKDBG_CHROMIUM` to use another binary. Without it the test skips with
//! a message, except in CI, where it fails (`xskdbg-testenv`).
//! `XSKDBG_UPDATE_IMAGES=1` also refreshes `docs/images/seed-race.png`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xskdbg_visual::html::{self, Options};

use super::{analyze_file, fixture_reports, out_dir, stem};

/// The browser, when `test` may run (skips with a reason, or fails in CI).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    if !xskdbg_testenv::require(test, &[xskdbg_testenv::Cap::Chromium]) {
        return None;
    }
    xskdbg_testenv::chromium()
}

/// Run headless Chromium on `url` with `extra` arguments; stdout goes to
/// `stdout_to`. Hangs are cut after a generous limit (a stuck browser, not a
/// performance check).
fn run_chromium(bin: &Path, url: &str, extra: &[String], stdout_to: &Path) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(File::create(stdout_to).expect("stdout file"))
    .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not exit on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed on {url}: {status}");
}

/// The DOM after the page's script ran.
fn dump_dom(bin: &Path, page: &Path, out: &Path) -> String {
    let url = format!("file://{}", page.display());
    run_chromium(bin, &url, &["--dump-dom".to_string()], out);
    std::fs::read_to_string(out).expect("dumped DOM")
}

/// A screenshot of `url` (`WxH`), decoded to RGB(A) rows.
fn screenshot(bin: &Path, url: &str, png: &Path, w: u32, h: u32) -> (u32, u32, usize, Vec<u8>) {
    let _ = std::fs::remove_file(png);
    let log = png.with_extension("log");
    run_chromium(
        bin,
        url,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={w},{h}"),
        ],
        &log,
    );
    let dec = png::Decoder::new(File::open(png).expect("screenshot written"));
    let mut r = dec.read_info().expect("a PNG");
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).expect("PNG frame");
    let chans = info.color_type.samples();
    buf.truncate(info.buffer_size());
    (info.width, info.height, chans, buf)
}

/// Pixels within a small distance of `rgb`.
fn count_color(px: &[u8], chans: usize, rgb: [u8; 3]) -> usize {
    px.chunks_exact(chans)
        .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(rgb[i])).abs() <= 12))
        .count()
}

#[test]
fn fixtures_with_findings_render_in_chromium() {
    let Some(bin) = chromium_or_skip("fixtures_with_findings_render_in_chromium") else {
        return;
    };
    let dir = out_dir("chromium");
    let mut tested = 0;
    for (p, report, mut spool) in fixture_reports() {
        if report.findings.is_empty() {
            continue;
        }
        tested += 1;
        let name = stem(&p);
        let page = dir.join(format!("{name}.html"));
        let opts = Options {
            input_name: format!("{name}.txt"),
            ..Default::default()
        };
        html::write_with(&report, Some(&mut spool), &opts, &page).expect("write html");

        let dom = dump_dom(&bin, &page, &dir.join(format!("{name}.dom.html")));
        let figs = report.findings.len().min(opts.max_figures);
        assert!(
            dom.contains(&format!("data-ready=\"{figs}\"")),
            "{name}: the script did not finish on every figure"
        );
        let parts: Vec<&str> = dom.split("<div class=\"fig\"").skip(1).collect();
        assert_eq!(parts.len(), figs, "{name}: one figure per finding");
        for (i, (f, fig)) in report.findings.iter().zip(&parts).enumerate() {
            let lanes = fig.matches("class=\"lane cpu\"").count();
            assert!(
                lanes >= f.cpus.len().max(1),
                "{name} #{i}: {lanes} CPU lanes for CPUs {:?}",
                f.cpus
            );
            for c in &f.cpus {
                assert!(
                    fig.contains(&format!("data-cpu=\"{c}\"")),
                    "{name} #{i}: no lane for CPU {c}"
                );
            }
            assert!(fig.contains(" hl\""), "{name} #{i}: no highlighted event");
            assert!(
                fig.contains("class=\"pt moment\""),
                "{name} #{i}: no moment line"
            );
            // Drawn by the script: axis ticks and placed labels.
            let axis = fig.split("<g class=\"axis\"").nth(1).expect("axis group");
            assert!(
                axis.trim_start()
                    .starts_with("transform=\"translate(0,0)\"><line"),
                "{name} #{i}: no axis ticks"
            );
            assert!(
                fig.contains("visibility: visible"),
                "{name} #{i}: no label placed"
            );
        }

        let png = dir.join(format!("{name}.png"));
        let (w, h, chans, px) = screenshot(
            &bin,
            &format!("file://{}", page.display()),
            &png,
            1320,
            1000,
        );
        assert_eq!((w, h), (1320, 1000), "{name}: screenshot size");
        // The first figure is on screen: highlight red, lane grey, RX blue.
        let red = count_color(&px, chans, [0xe0, 0x31, 0x31]);
        let lane = count_color(&px, chans, [0xf8, 0xf9, 0xfa]);
        assert!(
            red > 200,
            "{name}: {red} highlight pixels in {}",
            png.display()
        );
        assert!(
            lane > 5000,
            "{name}: {lane} lane pixels in {}",
            png.display()
        );
        eprintln!("{name}: screenshot {}", png.display());
    }
    assert!(tested > 0, "no fixture with a finding");
}

/// The README's picture of the seed story's race (written only with
/// `XSKDBG_UPDATE_IMAGES=1`; always rendered and checked).
#[test]
fn seed_race_picture() {
    let Some(bin) = chromium_or_skip("seed_race_picture") else {
        return;
    };
    let p = super::fixtures_dir().join("seed-race.txt");
    let (report, mut spool) = analyze_file(&p);
    let dir = out_dir("chromium");
    let page = dir.join("seed-race-readme.html");
    let opts = Options {
        input_name: "seed-race.txt".into(),
        ..Default::default()
    };
    html::write_with(&report, Some(&mut spool), &opts, &page).expect("write html");
    let png = dir.join("seed-race-readme.png");
    // The top of the page: summary, the finding, its timeline and legend.
    let url = format!("file://{}", page.display());
    let (_, _, chans, px) = screenshot(&bin, &url, &png, 1280, 980);
    // The overlap band's hatch and the lifeline's RX ring colour are on screen.
    assert!(
        count_color(&px, chans, [0xfa, 0x52, 0x52]) > 50,
        "overlap hatch visible"
    );
    assert!(
        count_color(&px, chans, [0x74, 0xc0, 0xfc]) > 500,
        "RX ring lifeline visible"
    );
    if std::env::var("XSKDBG_UPDATE_IMAGES").as_deref() == Ok("1") {
        let dst = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images/seed-race.png");
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&png, &dst).expect("copy to docs/images");
        eprintln!("updated {}", dst.display());
    }
}

/// The page's script in action: zoom in, pan, switch to event order. A
/// second inline script (allowed by the page's policy, like the page's own)
/// presses the buttons and records what the figure shows before and after.
#[test]
fn zoom_pan_and_scale_switch_work() {
    let Some(bin) = chromium_or_skip("zoom_pan_and_scale_switch_work") else {
        return;
    };
    let p = super::fixtures_dir().join("seed-fifo.txt");
    let (report, mut spool) = analyze_file(&p);
    assert!(!report.findings.is_empty());
    let dir = out_dir("chromium");
    let page = dir.join("interact.html");
    html::write_with(&report, Some(&mut spool), &Options::default(), &page).expect("write html");
    let driver = r#"<script>
(function () {
  var fig = document.querySelector("div.fig"), svg = fig.querySelector("svg.timeline");
  function btn(a) { fig.querySelector('button[data-act="' + a + '"]').click(); }
  function xs() {
    return Array.prototype.map.call(svg.querySelectorAll(".plot g.pt.ev"), function (g) {
      return parseFloat(g.getAttribute("transform").replace("translate(", ""));
    });
  }
  function ticks() {
    return Array.prototype.map.call(svg.querySelectorAll("g.axis text"), function (t) { return t.textContent; });
  }
  var r = { x0: xs(), t0: ticks() };
  btn("in"); btn("in"); btn("in");
  r.x1 = xs(); r.t1 = ticks();
  svg.dispatchEvent(new WheelEvent("wheel", { deltaX: 400, deltaY: 0, bubbles: true, cancelable: true }));
  r.x2 = xs();
  btn("reset"); r.x3 = xs();
  btn("mode"); r.x4 = xs(); r.t4 = ticks(); r.mode = fig.querySelector('button[data-act="mode"]').textContent;
  var out = document.createElement("pre"); out.id = "result"; out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
})();
</script></body>"#;
    let text = std::fs::read_to_string(&page)
        .unwrap()
        .replace("</body>", driver);
    std::fs::write(&page, text).unwrap();
    let dom = dump_dom(&bin, &page, &dir.join("interact.dom.html"));
    let json = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .expect("the driver script ran");
    let r: serde_json::Value =
        serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).expect("JSON");
    let v = |k: &str| -> Vec<f64> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (x0, x1, x2, x3, x4) = (v("x0"), v("x1"), v("x2"), v("x3"), v("x4"));
    let spread = |x: &[f64]| {
        x.iter().cloned().fold(f64::MIN, f64::max) - x.iter().cloned().fold(f64::MAX, f64::min)
    };
    assert!(x0.len() > 3);
    // Three zoom steps of 2x around the middle spread the marks 8x.
    let ratio = spread(&x1) / spread(&x0);
    assert!((ratio - 8.0).abs() < 0.01, "zoom ratio {ratio}");
    assert_ne!(r["t0"], r["t1"], "the axis is redrawn for the zoomed range");
    // Horizontal scrolling pans: every mark moves left by the same amount.
    let d: Vec<f64> = x1.iter().zip(&x2).map(|(a, b)| a - b).collect();
    assert!(
        d[0] > 1.0 && d.iter().all(|v| (v - d[0]).abs() < 0.2),
        "pan {d:?}"
    );
    assert_eq!(x3, x0, "reset restores the first view");
    // Event order: equal steps between consecutive entries on the CPU lanes.
    assert_eq!(r["mode"], "scale: order");
    assert!(r["t4"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.as_str().unwrap().starts_with("line ")));
    assert_ne!(x4, x0);
}
