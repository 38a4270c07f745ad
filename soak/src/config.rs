//! What a soak run does: pure configuration, parsed and checked without
//! touching the kernel.

use std::path::PathBuf;
use std::time::Duration;

/// A fault injected on purpose: each one a bug users actually write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// A frame put on FILL and on TX at once.
    FillTx,
    /// A frame put on FILL twice.
    DoubleFill,
    /// A completion recycled twice.
    DoubleComplete,
    /// A TX frame put back on FILL before its completion came.
    ReuseBeforeComplete,
    /// A received frame never returned to any ring or free list.
    Leak,
}

impl Inject {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [Inject; 5] = [
        Inject::FillTx,
        Inject::DoubleFill,
        Inject::DoubleComplete,
        Inject::ReuseBeforeComplete,
        Inject::Leak,
    ];

    /// The `--inject` word.
    pub fn name(self) -> &'static str {
        match self {
            Inject::FillTx => "fill-tx",
            Inject::DoubleFill => "double-fill",
            Inject::DoubleComplete => "double-complete",
            Inject::ReuseBeforeComplete => "reuse-before-complete",
            Inject::Leak => "leak",
        }
    }

    /// One line for `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            Inject::FillTx => "a frame put on FILL and TX at once",
            Inject::DoubleFill => "a frame put on FILL twice",
            Inject::DoubleComplete => "a completion recycled twice",
            Inject::ReuseBeforeComplete => "a TX frame put back on FILL before its completion",
            Inject::Leak => "a received frame never returned",
        }
    }

    /// Parses an `--inject` word.
    pub fn parse(s: &str) -> Result<Inject, String> {
        Inject::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Inject::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault kind {s:?}; one of: {}", names.join(", "))
            })
    }

    /// The finding kind the analyzer must report for this fault (what the
    /// recorder's `violation kind=` says, or the analyzer's own rule).
    pub fn expected_kinds(self) -> &'static [&'static str] {
        match self {
            Inject::FillTx | Inject::ReuseBeforeComplete => &["invalid_transition"],
            Inject::DoubleFill | Inject::DoubleComplete => {
                &["duplicate_in_flight", "invalid_transition"]
            }
            Inject::Leak => &["frame_leak"],
        }
    }
}

/// Where the recorder writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// `trace_marker` of a fresh ftrace instance (the kernel's timeline).
    Marker,
    /// An in-memory ring of recent lines (no tracefs needed).
    Memory,
    /// Checks only, no lines (no trace to analyze).
    Null,
    /// No recorder at all: the uninstrumented baseline for speed figures.
    Off,
}

impl SinkKind {
    /// Parses `marker` / `memory` / `null` / `off`.
    pub fn parse(s: &str) -> Result<SinkKind, String> {
        match s {
            "marker" => Ok(SinkKind::Marker),
            "memory" => Ok(SinkKind::Memory),
            "null" => Ok(SinkKind::Null),
            "off" => Ok(SinkKind::Off),
            _ => Err(format!(
                "unknown sink {s:?}; one of: marker, memory, null, off"
            )),
        }
    }
}

/// A soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many frames were sent in total (0: no bound).
    pub packets: u64,
    /// Queues per veth end.
    pub queues: u32,
    /// The fault to inject, if any.
    pub inject: Option<Inject>,
    /// Inject after this many frames were received.
    pub inject_after: u64,
    /// Write a poison value into every consumed RX slot; an RX descriptor
    /// carrying it means the kernel published a slot before writing it (the
    /// seed story's veth race).
    pub poison: bool,
    /// CPUs the generators run on (each CPU feeds rx queue `cpu % queues`).
    pub traffic_cpus: Vec<usize>,
    /// CPU the forwarder is pinned to.
    pub forwarder_cpu: Option<usize>,
    /// Where results go.
    pub out: PathBuf,
    /// Recorder sink.
    pub sink: SinkKind,
    /// Kernel probes to attach (needs the marker sink: their events land in
    /// the same ftrace instance).
    pub probes: Option<xskdbg_probes::Backend>,
    /// Frames in the shared UMEM.
    pub frames: u32,
    /// ftrace buffer per CPU for the marker sink, KiB.
    pub buffer_kb: u64,
    /// How the program under test is shaped (ring sizes, a slow consumer,
    /// the XDP mode, sockets per queue, extra kprobe events, kept traces).
    pub knobs: Knobs,
    /// The recorder's post-trigger window: after the first violation the
    /// forwarder goes on and the recorder writes this many more lines (or
    /// for this long), then freezes and the run stops.
    pub post_trigger: xskdbg_recorder::PostTrigger,
}

/// Where the redirect program of the application ends runs (`--xdp-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Driver (native) mode: veth runs XDP in its NAPI poll and the receive
    /// is flushed at the poll's end (the seed story's path).
    #[default]
    Drv,
    /// Generic (SKB) mode: `xsk_generic_rcv()` reserves, writes and
    /// publishes the slot before the `xdp:xdp_redirect` tracepoint fires.
    Skb,
}

impl XdpAttach {
    /// Parses `drv` / `skb` (also `native` / `generic`).
    pub fn parse(s: &str) -> Result<XdpAttach, String> {
        match s {
            "drv" | "native" => Ok(XdpAttach::Drv),
            "skb" | "generic" => Ok(XdpAttach::Skb),
            _ => Err(format!("unknown XDP mode {s:?}; one of: drv, skb")),
        }
    }

    /// The `--xdp-mode` word.
    pub fn name(self) -> &'static str {
        match self {
            XdpAttach::Drv => "drv",
            XdpAttach::Skb => "skb",
        }
    }
}

/// One line for `kprobe_events` (`p:GROUP/EVENT LOCATION ARGS...`), e.g.
/// the seed story's perf-probe definitions written by hand for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KprobeDef {
    /// The line as written to `kprobe_events`.
    pub line: String,
    /// Its event group.
    pub group: String,
    /// Its event name (what ftrace prints before the colon).
    pub event: String,
}

impl KprobeDef {
    /// Parses one definition; only probe definitions (`p:`/`r:`, with an
    /// explicit `GROUP/EVENT`) are accepted: the soak must know the event to
    /// enable it in its instance and to remove it afterwards.
    pub fn parse(line: &str) -> Result<KprobeDef, String> {
        let line = line.trim();
        let mut words = line.split_whitespace();
        let (Some(head), Some(_location)) = (words.next(), words.next()) else {
            return Err(format!(
                "{line:?}: want `p:GROUP/EVENT FUNCTION[+OFFSET] [ARGS...]`"
            ));
        };
        let spec = ["p:", "r:"]
            .iter()
            .find_map(|k| head.strip_prefix(k))
            .ok_or_else(|| format!("{line:?}: only p: and r: probe definitions are accepted"))?;
        let Some((group, event)) = spec.split_once('/') else {
            return Err(format!(
                "{line:?}: name the event as GROUP/EVENT (the soak enables and removes it by that name)"
            ));
        };
        let ok =
            |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok(group) || !ok(event) {
            return Err(format!(
                "{line:?}: GROUP and EVENT may hold letters, digits and _ only"
            ));
        }
        Ok(KprobeDef {
            line: line.to_string(),
            group: group.to_string(),
            event: event.to_string(),
        })
    }

    /// Parses a file of definitions: one per line; blank lines and lines
    /// starting with `#` are skipped. Errors name the line.
    pub fn parse_file(text: &str) -> Result<Vec<KprobeDef>, String> {
        let mut v = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            v.push(KprobeDef::parse(t).map_err(|e| format!("line {}: {e}", i + 1))?);
        }
        if v.is_empty() {
            return Err("no probe definition in the file".into());
        }
        Ok(v)
    }
}

/// How the program under test runs. The defaults are the plain soak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// RX ring entries per socket (a power of two).
    pub rx_size: u32,
    /// The forwarder sleeps this long after every RX batch it read: a slow
    /// consumer, so the RX rings fill up and the kernel's reservations fail.
    pub consumer_sleep: Option<Duration>,
    /// XDP mode of the application ends.
    pub xdp_mode: XdpAttach,
    /// AF_XDP sockets per device queue: the first one forwards (RX, FILL,
    /// COMPLETION, TX), every further one is bound with XDP_SHARED_UMEM to
    /// the same device and queue (one buffer pool, one FILL and one
    /// COMPLETION ring) and transmits its own frames from a thread of its own.
    pub sockets_per_queue: u32,
    /// Write trace.txt, report.txt and report.json even when clean.
    pub keep_trace: bool,
    /// Extra kprobe events created, enabled in the soak's instance, and
    /// removed after the trace was read.
    pub kprobe_events: Vec<KprobeDef>,
    /// How the BPF probes write their events (ring buffers drained into the
    /// trace, or the old bpf_trace_printk lines, to measure against).
    pub probe_output: xskdbg_probes::Output,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            rx_size: 2048,
            consumer_sleep: None,
            xdp_mode: XdpAttach::Drv,
            sockets_per_queue: 1,
            keep_trace: false,
            kprobe_events: Vec::new(),
            probe_output: xskdbg_probes::Output::Ring,
        }
    }
}

impl SoakConfig {
    /// Checks values that would make the run meaningless; the message names
    /// the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.duration.is_zero() {
            return Err("--duration must be above 0".into());
        }
        if !(1..=64).contains(&self.queues) {
            return Err(format!("--queues {}: use 1..=64", self.queues));
        }
        if self.traffic_cpus.is_empty() {
            return Err("--traffic-cpus is empty".into());
        }
        if self.inject.is_some() && matches!(self.sink, SinkKind::Null | SinkKind::Off) {
            return Err(
                "--inject needs --sink marker or memory: a trace to catch the fault in".into(),
            );
        }
        if self.probes.is_some() && self.sink != SinkKind::Marker {
            return Err(
                "--probes needs --sink marker: kernel events go to the ftrace instance".into(),
            );
        }
        if !self.frames.is_power_of_two() || self.frames < 256 {
            return Err(format!(
                "{} UMEM frames: a power of two >= 256",
                self.frames
            ));
        }
        let k = &self.knobs;
        if !k.rx_size.is_power_of_two() || !(8..=16384).contains(&k.rx_size) {
            return Err(format!(
                "--rx-size {}: a power of two in 8..=16384",
                k.rx_size
            ));
        }
        if !(1..=4).contains(&k.sockets_per_queue) {
            return Err(format!(
                "--sockets-per-queue {}: use 1..=4",
                k.sockets_per_queue
            ));
        }
        if k.sockets_per_queue > 1 {
            // Every extra socket's sender owns SENDER_FRAMES frames; the
            // forwarder keeps at least half of the UMEM.
            let senders = 2 * self.queues * (k.sockets_per_queue - 1);
            if u64::from(senders) * u64::from(SENDER_FRAMES) > u64::from(self.frames) / 2 {
                return Err(format!(
                    "--sockets-per-queue {} with --queues {}: {senders} sender threads need {} frames; raise --frames",
                    k.sockets_per_queue,
                    self.queues,
                    u64::from(senders) * u64::from(SENDER_FRAMES) * 2
                ));
            }
        }
        if !k.kprobe_events.is_empty() && self.sink != SinkKind::Marker {
            return Err(
                "--kprobe-events needs --sink marker: the events go to the ftrace instance".into(),
            );
        }
        if k.keep_trace && !matches!(self.sink, SinkKind::Marker | SinkKind::Memory) {
            return Err("--keep-trace needs --sink marker or memory: a trace to keep".into());
        }
        Ok(())
    }
}

/// Frames each extra socket's sender thread owns (`--sockets-per-queue`).
pub const SENDER_FRAMES: u32 = 256;

/// Parses a CPU list such as `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("CPU list {s:?}: {part:?} is not N or N-M");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        return Err(format!("CPU list {s:?} is empty"));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_names_round_trip() {
        for k in Inject::ALL {
            assert_eq!(Inject::parse(k.name()), Ok(k));
            assert!(!k.expected_kinds().is_empty());
        }
        let e = Inject::parse("double-free").unwrap_err();
        assert!(e.contains("fill-tx") && e.contains("leak"), "{e}");
    }

    #[test]
    fn xdp_modes() {
        assert_eq!(XdpAttach::parse("skb"), Ok(XdpAttach::Skb));
        assert_eq!(XdpAttach::parse("generic"), Ok(XdpAttach::Skb));
        assert_eq!(XdpAttach::parse("drv"), Ok(XdpAttach::Drv));
        assert!(XdpAttach::parse("zc").unwrap_err().contains("drv, skb"));
        assert_eq!(XdpAttach::Skb.name(), "skb");
    }

    #[test]
    fn kprobe_definitions() {
        // The seed story's receive probe, written for Debian's 6.1.0-57.
        let d = KprobeDef::parse(
            "p:xskdbg_seed/__xsk_rcv_zc_L7 __xsk_rcv_zc+0x3a addr=%r8:x64 len=%r9:x32 xs=%di:x64",
        )
        .unwrap();
        assert_eq!(
            (d.group.as_str(), d.event.as_str()),
            ("xskdbg_seed", "__xsk_rcv_zc_L7")
        );
        assert!(KprobeDef::parse("p:noslash func")
            .unwrap_err()
            .contains("GROUP/EVENT"));
        assert!(KprobeDef::parse("-:g/e").is_err());
        assert!(KprobeDef::parse("p:g/e").is_err(), "no location");
        assert!(KprobeDef::parse("p:g/../e f").is_err());
        let f = "# the seed\n\np:g/a f\n  r:g/b f $retval\n";
        let v = KprobeDef::parse_file(f).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].event, "b");
        assert!(KprobeDef::parse_file("p:g/a f\nbad line\n")
            .unwrap_err()
            .starts_with("line 2:"));
        assert!(KprobeDef::parse_file("# nothing\n").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("1,1,0"), Ok(vec![0, 1]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
