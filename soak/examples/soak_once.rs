//! Runs one short soak and prints its summary; a development aid until
//! `xskdbg soak` is registered.
//! Usage: `soak_once OUT_DIR [INJECT|none] [marker|memory] [PROBE_BACKEND]`.

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/tmp/xskdbg-soak".into());
    let inject = args
        .get(2)
        .filter(|k| k.as_str() != "none")
        .map(|k| xskdbg_soak::Inject::parse(k).unwrap_or_else(|e| panic!("{e}")));
    let sink = args
        .get(3)
        .map(|s| xskdbg_soak::SinkKind::parse(s).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or(xskdbg_soak::SinkKind::Memory);
    let cpus = xsknet::traffic::allowed_cpus().unwrap_or_else(|_| vec![0]);
    let cfg = xskdbg_soak::SoakConfig {
        duration: Duration::from_secs(3),
        packets: 0,
        queues: cpus.len().clamp(1, 2) as u32,
        inject,
        inject_after: 2000,
        poison: false,
        probes: args
            .get(4)
            .map(|b| b.parse().unwrap_or_else(|e| panic!("{e}"))),
        traffic_cpus: cpus,
        forwarder_cpu: None,
        out: out.into(),
        sink,
        frames: 4096,
        buffer_kb: 8192,
        knobs: xskdbg_soak::Knobs::default(),
        post_trigger: xskdbg_soak::PostTrigger::DEFAULT,
    };
    match xskdbg_soak::run(&cfg) {
        Ok(o) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&o.summary).unwrap_or_default()
            );
            std::process::exit(i32::from(o.exit_code));
        }
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}
