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
        Ok(())
    }
}

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
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("1,1,0"), Ok(vec![0, 1]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
