//! The probe backends, what each one can prove, the `probe` header line of
//! `docs/TRACE-FORMAT.md`, and the pure choice behind `--backend auto`.

use std::fmt;
use std::str::FromStr;

use xskdbg_format::{key, op, LineWriter};

use crate::error::ProbeError;

/// How kernel events are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Pick the best backend the running kernel allows.
    Auto,
    /// tp_btf programs on `xdp:*` and `napi:napi_poll` (no function probes).
    Tracepoint,
    /// BPF trampolines (fentry/fexit) on the xsk functions.
    Fentry,
    /// BPF programs on kprobes/kretprobes (perf_event_open).
    Kprobe,
    /// Plain `kprobe_events` lines, no BPF at all.
    Tracefs,
}

impl Backend {
    /// All concrete backends, best first: the order `auto` tries them in.
    pub const AUTO_ORDER: [Backend; 4] = [
        Backend::Fentry,
        Backend::Kprobe,
        Backend::Tracepoint,
        Backend::Tracefs,
    ];

    /// The name used on the command line and in the `probe` line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Tracepoint => "tracepoint",
            Backend::Fentry => "fentry",
            Backend::Kprobe => "kprobe",
            Backend::Tracefs => "tracefs",
        }
    }

    /// What a trace from this backend can prove.
    pub fn proves(self) -> Proves {
        match self {
            Backend::Tracepoint => Proves {
                flush: Flush::Inferred,
                rxslot: true,
                tx: false,
                comp: false,
            },
            Backend::Fentry | Backend::Kprobe => Proves {
                flush: Flush::Exact,
                rxslot: true,
                tx: true,
                comp: true,
            },
            Backend::Tracefs => Proves {
                flush: Flush::Exact,
                rxslot: true,
                tx: true,
                comp: true,
            },
            Backend::Auto => Proves {
                flush: Flush::None,
                rxslot: false,
                tx: false,
                comp: false,
            },
        }
    }

    /// The `xskdbg:1 probe ...` header line written once when probes attach.
    pub fn header_line(self, kernel_release: &str) -> String {
        let p = self.proves();
        // A release never contains spaces, but keep the line one token per
        // field even on odd uname strings (the writer replaces ASCII blanks;
        // this also covers other Unicode white space).
        let release: String = kernel_release
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let mut b = Vec::new();
        b.start(op::PROBE);
        b.field(key::BACKEND, self.name());
        b.field(key::KERNEL, release);
        b.field(key::FLUSH, p.flush.name());
        b.field_hex(key::RXSLOT, u64::from(p.rxslot));
        b.field_hex(key::TX, u64::from(p.tx));
        b.field_hex(key::COMP, u64::from(p.comp));
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// A `kstackdef` line: the frames of kernel stack `id`, innermost first,
/// cut before 3900 bytes (one `trace_marker` write holds at most 4096).
pub fn kstackdef_line(id: u32, frames: &[String]) -> String {
    let mut b = Vec::new();
    b.start(op::KSTACKDEF);
    b.field_hex(key::ID, u64::from(id));
    b.key(key::F);
    for (i, f) in frames.iter().enumerate() {
        if b.len() + f.len() + 1 > 3900 {
            break;
        }
        if i > 0 {
            b.byte(b',');
        }
        b.put(f.as_bytes());
    }
    String::from_utf8_lossy(&b).into_owned()
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = ProbeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Backend::Auto,
            "tracepoint" | "tp" => Backend::Tracepoint,
            "fentry" => Backend::Fentry,
            "kprobe" => Backend::Kprobe,
            "tracefs" => Backend::Tracefs,
            other => {
                return Err(ProbeError::Usage(format!(
                    "unknown backend {other:?}: use auto, tracepoint, fentry, kprobe or tracefs"
                )))
            }
        })
    }
}

/// How much a backend knows about RX producer publication (`xsk_flush`):
/// the `flush=` of the `probe` line, as the analyzer reads it.
pub use xskdbg_format::FlushMode as Flush;

/// What a trace from one backend can prove (the `probe` line's fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proves {
    /// Publication of the RX producer.
    pub flush: Flush,
    /// Receive events carry the RX slot index.
    pub rxslot: bool,
    /// Transmit events (`ktx`).
    pub tx: bool,
    /// Completion events (`kcomp`).
    pub comp: bool,
}

/// What the running kernel offers, measured once by [`crate::sys::caps`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    /// `uname -r`.
    pub release: String,
    /// `/sys/kernel/btf/vmlinux` is present (CO-RE, tp_btf, fentry).
    pub btf: bool,
    /// tracefs has `kprobe_events` (CONFIG_KPROBE_EVENTS).
    pub kprobe_events: bool,
    /// The kernel has the kprobe PMU (`/sys/bus/event_source/devices/kprobe`),
    /// i.e. BPF kprobes can attach (CONFIG_KPROBES).
    pub kprobe_pmu: bool,
    /// The `xdp:xdp_redirect` and `napi:napi_poll` tracepoints exist.
    pub tracepoints: bool,
    /// Functions the function backends need that are in `/proc/kallsyms`.
    pub funcs_present: Vec<String>,
    /// Needed functions that are missing (inlined or renamed).
    pub funcs_missing: Vec<String>,
}

/// Functions the receive side of the function backends cannot do without.
pub const REQUIRED_FUNCS: [&str; 2] = ["__xsk_rcv_zc", "sock_def_readable"];
/// Functions probed when present (transmit and completion side).
pub const OPTIONAL_FUNCS: [&str; 4] = [
    "xp_raw_get_data",
    "xsk_tx_peek_desc",
    "xsk_tx_completed",
    "xsk_destruct_skb",
];

impl Caps {
    /// One line listing what this kernel offers, for error messages.
    pub fn summary(&self) -> String {
        let mut v = vec![format!("kernel {}", self.release)];
        v.push(format!("BTF {}", if self.btf { "yes" } else { "no" }));
        v.push(format!(
            "kprobe PMU {}",
            if self.kprobe_pmu { "yes" } else { "no" }
        ));
        v.push(format!(
            "kprobe_events {}",
            if self.kprobe_events { "yes" } else { "no" }
        ));
        v.push(format!(
            "xdp/napi tracepoints {}",
            if self.tracepoints { "yes" } else { "no" }
        ));
        if !self.funcs_present.is_empty() {
            v.push(format!("functions {}", self.funcs_present.join(",")));
        }
        if !self.funcs_missing.is_empty() {
            v.push(format!(
                "missing (inlined?) {}",
                self.funcs_missing.join(",")
            ));
        }
        v.join("; ")
    }

    /// Why `backend` cannot work here before even trying, or `None` when it
    /// is worth an attempt. Loading may still be refused (EPERM) later.
    pub fn precheck(&self, backend: Backend) -> Option<String> {
        let missing_required: Vec<&str> = REQUIRED_FUNCS
            .iter()
            .copied()
            .filter(|f| self.funcs_missing.iter().any(|m| m == f))
            .collect();
        match backend {
            Backend::Auto => Some("auto is not a backend".into()),
            Backend::Tracepoint => {
                if !self.btf {
                    Some("no kernel BTF (/sys/kernel/btf/vmlinux): tp_btf needs it".into())
                } else if !self.tracepoints {
                    Some("the xdp:xdp_redirect / napi:napi_poll tracepoints are missing".into())
                } else {
                    None
                }
            }
            Backend::Kprobe if !self.kprobe_pmu && !self.kprobe_events => Some(
                "no kprobe support: neither the kprobe PMU (/sys/bus/event_source/devices/kprobe) nor kprobe_events (CONFIG_KPROBES off)".into(),
            ),
            Backend::Fentry | Backend::Kprobe => {
                if !self.btf {
                    Some("no kernel BTF (/sys/kernel/btf/vmlinux): CO-RE needs it".into())
                } else if !missing_required.is_empty() {
                    Some(format!(
                        "functions not in /proc/kallsyms: {}",
                        missing_required.join(",")
                    ))
                } else {
                    None
                }
            }
            Backend::Tracefs => {
                if !self.kprobe_events {
                    Some("tracefs has no kprobe_events (kernel without CONFIG_KPROBE_EVENTS)".into())
                } else if !self.btf {
                    Some("no kernel BTF to compute field offsets".into())
                } else if !missing_required.is_empty() {
                    Some(format!(
                        "functions not in /proc/kallsyms: {}",
                        missing_required.join(",")
                    ))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_line_matches_format() {
        assert_eq!(
            Backend::Tracepoint.header_line("6.18.44-x"),
            "xskdbg:1 probe backend=tracepoint kernel=6.18.44-x flush=inferred rxslot=1 tx=0 comp=0"
        );
        assert_eq!(
            Backend::Kprobe.header_line("6.1.0 odd"),
            "xskdbg:1 probe backend=kprobe kernel=6.1.0_odd flush=exact rxslot=1 tx=1 comp=1"
        );
    }

    #[test]
    fn kstackdef_lines_are_cut_before_a_marker_write_is() {
        let frames = vec![
            "xsk_flush+0x1a".to_string(),
            "__xsk_map_flush+0x4e".to_string(),
        ];
        assert_eq!(
            kstackdef_line(0x2a, &frames),
            "xskdbg:1 kstackdef id=2a f=xsk_flush+0x1a,__xsk_map_flush+0x4e"
        );
        let many = vec!["f".repeat(100); 100];
        let l = kstackdef_line(1, &many);
        assert!(l.len() <= 3900 && l.len() > 3700, "{}", l.len());
        assert!(l.ends_with(&"f".repeat(100)));
    }

    #[test]
    fn parse_names() {
        for b in Backend::AUTO_ORDER {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert_eq!("auto".parse::<Backend>().unwrap(), Backend::Auto);
        let e = "kprobes".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("kprobes") && e.contains("tracepoint"), "{e}");
    }

    fn locked_down() -> Caps {
        Caps {
            release: "6.18".into(),
            btf: true,
            kprobe_pmu: false,
            kprobe_events: false,
            tracepoints: true,
            funcs_present: vec!["__xsk_rcv_zc".into(), "sock_def_readable".into()],
            funcs_missing: vec![],
        }
    }

    #[test]
    fn precheck_locked_down_host() {
        let c = locked_down();
        assert_eq!(c.precheck(Backend::Tracepoint), None);
        assert_eq!(
            c.precheck(Backend::Fentry),
            None,
            "fentry is refused only at load"
        );
        assert!(c.precheck(Backend::Kprobe).unwrap().contains("kprobe PMU"));
        assert!(c
            .precheck(Backend::Tracefs)
            .unwrap()
            .contains("kprobe_events"));
        let mut c2 = c.clone();
        c2.kprobe_pmu = true;
        c2.funcs_missing = vec!["__xsk_rcv_zc".into()];
        c2.funcs_present.retain(|f| f != "__xsk_rcv_zc");
        assert!(c2
            .precheck(Backend::Kprobe)
            .unwrap()
            .contains("__xsk_rcv_zc"));
        c2.btf = false;
        assert!(c2.precheck(Backend::Tracepoint).unwrap().contains("BTF"));
        assert!(c2.summary().contains("BTF no"));
    }
}
