//! `xskdbg doctor`: the preflight an AF_XDP developer runs first. It answers
//! the setup failures of the seed stories before they cost a day: tracefs,
//! BTF, which probe backends this kernel allows, the XDP features of a device,
//! veth queue counts (ENOSPC), ifindex collisions across namespaces (shared
//! UMEM keyed by ifindex), kernels known to carry the veth race, and what a
//! non-root user lacks.
//!
//! Modules: [`kernel`] (pure version/config facts), [`netlink`] (rtnetlink and
//! the `netdev` genl family), and this file, which turns what they find into
//! [`Check`]s. Which probe backends load is asked of the probes themselves
//! (`xskdbg_probes::try_load`, feature `probes`): the same skeletons
//! `xskdbg record` attaches, so the answer cannot drift from what recording
//! does. Without the feature the backend checks say they are not built in.
//! Pure verdict logic lives in functions that take plain data
//! ([`veth_queue_check`], [`ifindex_collisions`], [`caps_missing`],
//! [`backend_checks`]) so it is tested without root.

pub mod kernel;
pub mod netlink;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Works.
    Ok,
    /// Works with limits, or something to know.
    Warning,
    /// Stops some part of xskdbg from working.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// One line of the doctor's report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short topic, e.g. `tracefs`.
    pub topic: String,
    /// Outcome.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it, when anything.
    pub fix: Option<String>,
}

fn check(topic: &str, level: Level, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        topic: topic.into(),
        level,
        detail: detail.into(),
        fix: fix.map(Into::into),
    }
}

/// What to examine.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A device to check (XDP features, veth queues).
    pub iface: Option<String>,
    /// The named network namespace (`ip netns`) the device lives in.
    pub netns: Option<String>,
}

/// Verdict on a veth pair's queue counts for driver-mode XDP: the kernel
/// refuses with ENOSPC ("XDP expects number of rx queues not less than peer
/// tx queues") when `rx_queues < peer_tx_queues`.
pub fn veth_queue_check(
    name: &str,
    rx_queues: u32,
    tx_queues: u32,
    peer: Option<(&str, u32, u32)>,
) -> Check {
    match peer {
        None => check(
            "veth queues",
            Level::Warning,
            format!("{name}: rx {rx_queues} / tx {tx_queues}; its peer was not found in any named namespace"),
            Some("make sure the peer's tx queue count is not above this device's rx queue count"),
        ),
        Some((pname, prx, ptx)) => {
            let mut bad = Vec::new();
            if rx_queues < ptx {
                bad.push(format!("{name} has {rx_queues} rx queues < {pname}'s {ptx} tx queues"));
            }
            if prx < tx_queues {
                bad.push(format!("{pname} has {prx} rx queues < {name}'s {tx_queues} tx queues"));
            }
            if bad.is_empty() {
                check(
                    "veth queues",
                    Level::Ok,
                    format!("{name} rx {rx_queues}/tx {tx_queues}, peer {pname} rx {prx}/tx {ptx}: driver-mode XDP can attach"),
                    None,
                )
            } else {
                check(
                    "veth queues",
                    Level::Error,
                    format!("{}: driver-mode XDP fails with ENOSPC on that side", bad.join("; ")),
                    Some("recreate the pair with `numrxqueues N numtxqueues N` on both sides, or use generic (SKB) mode"),
                )
            }
        }
    }
}

/// Finds ifindexes used by more than one namespace: `(ifindex, [(netns, name)])`.
pub fn ifindex_collisions(
    by_ns: &[(String, Vec<netlink::Link>)],
) -> Vec<(u32, Vec<(String, String)>)> {
    let mut map: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for (ns, links) in by_ns {
        for l in links {
            if l.name == "lo" {
                continue;
            }
            map.entry(l.ifindex)
                .or_default()
                .push((ns.clone(), l.name.clone()));
        }
    }
    map.into_iter().filter(|(_, v)| v.len() > 1).collect()
}

/// Capabilities xskdbg needs that `cap_eff` (hex bitmask, `/proc/self/status`
/// `CapEff`) lacks, each with what it is needed for.
pub fn caps_missing(cap_eff: u64) -> Vec<(&'static str, &'static str)> {
    const NEEDED: [(u32, &str, &str); 4] = [
        (
            12,
            "CAP_NET_ADMIN",
            "attach XDP programs, create veth pairs and namespaces",
        ),
        (
            21,
            "CAP_SYS_ADMIN",
            "load BPF on kernels before 5.8, write tracefs controls",
        ),
        (
            38,
            "CAP_PERFMON",
            "load tracing BPF programs and kprobes (5.8+)",
        ),
        (39, "CAP_BPF", "load BPF programs and create maps (5.8+)"),
    ];
    NEEDED
        .iter()
        .filter(|(bit, _, _)| cap_eff & (1u64 << bit) == 0)
        .map(|(_, n, why)| (*n, *why))
        .collect()
}

/// Where tracefs is mounted, if anywhere.
pub fn tracefs_dir() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("trace").exists())
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn kernel_config() -> Option<String> {
    use std::io::Read;
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        let mut s = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut s)
            .is_ok()
        {
            return Some(s);
        }
    }
    let rel = read("/proc/sys/kernel/osrelease")?;
    read(&format!("/boot/config-{}", rel.trim()))
}

/// Runs every check and returns them in report order.
pub fn run(opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    let release = read("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let proc_version = read("/proc/version").unwrap_or_default();
    match kernel::running_version(&release, &proc_version) {
        None => out.push(check(
            "kernel",
            Level::Warning,
            format!("cannot parse kernel release {release:?}"),
            None,
        )),
        Some(v) => {
            out.push(check(
                "kernel",
                Level::Ok,
                format!("{release} (version {v})"),
                None,
            ));
            out.push(match kernel::veth_race(v) {
                kernel::VethRace::NotApplicable => check("veth race", Level::Ok, "veth has no native XDP before 4.19", None),
                kernel::VethRace::Fixed(how) => check(
                    "veth race",
                    Level::Ok,
                    format!("{v} carries {how} (judged by version; a patched kernel can differ)"),
                    None,
                ),
                kernel::VethRace::Affected(why) => check(
                    "veth race",
                    Level::Warning,
                    format!("AF_XDP on veth can expose stale RX descriptors: {why}"),
                    Some("upgrade the kernel; `xskdbg analyze` names it as concurrent_producer when it happens"),
                ),
            });
        }
    }

    let tracefs = tracefs_dir();
    match &tracefs {
        None => out.push(check(
            "tracefs",
            Level::Error,
            "not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing",
            Some("mount -t tracefs nodev /sys/kernel/tracing"),
        )),
        Some(t) => {
            let marker = t.join("trace_marker");
            let writable = std::fs::OpenOptions::new()
                .write(true)
                .open(&marker)
                .is_ok();
            out.push(if writable {
                check("tracefs", Level::Ok, format!("{} mounted, trace_marker writable", t.display()), None)
            } else {
                check(
                    "tracefs",
                    Level::Error,
                    format!("{} is not writable by this user", marker.display()),
                    Some("run as root, or give the user write access to trace_marker and the instance's files"),
                )
            });
            if !t.join("instances").is_dir() {
                out.push(check(
                    "tracefs instances",
                    Level::Warning,
                    "no instances directory: the recorder must use the top-level buffer",
                    None,
                ));
            }
        }
    }

    let btf = std::fs::metadata("/sys/kernel/btf/vmlinux").ok();
    out.push(match &btf {
        Some(b) => check(
            "BTF",
            Level::Ok,
            format!("/sys/kernel/btf/vmlinux ({} KiB)", b.len() / 1024),
            None,
        ),
        None => check(
            "BTF",
            Level::Error,
            "no /sys/kernel/btf/vmlinux: CO-RE probes cannot load",
            Some("use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or the tracefs backend"),
        ),
    });

    if let Some(cfg) = kernel_config() {
        if kernel::config_enabled(&cfg, "CONFIG_XDP_SOCKETS") == Some(false) {
            out.push(check(
                "AF_XDP",
                Level::Error,
                "CONFIG_XDP_SOCKETS is off",
                Some("use a kernel with AF_XDP"),
            ));
        }
    }

    let caps = read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0);
    let missing = caps_missing(caps);
    if missing.is_empty() {
        out.push(check(
            "privileges",
            Level::Ok,
            "CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON and CAP_BPF held",
            None,
        ));
    } else {
        for (cap, why) in missing {
            out.push(check(
                "privileges",
                Level::Warning,
                format!("missing {cap}: needed to {why}"),
                Some("run as root, or grant it: setcap cap_bpf,cap_perfmon,cap_net_admin+ep $(which xskdbg)"),
            ));
        }
    }

    out.extend(probe_backends());

    out.extend(namespace_checks(opts));
    out
}

/// How a backend came out of its load test: `Ok(what was loaded, notes)` or
/// `Err(why not)`.
pub type BackendOutcome = Result<(String, Vec<String>), String>;

/// One check per backend (`backend fentry`, ...) in `auto`'s order, and an
/// error when none can load.
pub fn backend_checks(outcomes: &[(&str, BackendOutcome)]) -> Vec<Check> {
    let mut out = Vec::new();
    for (name, o) in outcomes {
        let topic = format!("backend {name}");
        out.push(match o {
            Ok((what, notes)) => {
                let mut detail = format!("loads: {what}");
                for n in notes {
                    detail.push_str("; ");
                    detail.push_str(n);
                }
                check(&topic, Level::Ok, detail, None)
            }
            Err(why) => check(&topic, Level::Warning, why.clone(), None),
        });
    }
    if !outcomes.iter().any(|(_, o)| o.is_ok()) {
        out.push(check(
            "probes",
            Level::Error,
            "no probe backend can load: only the application's recorder lines will be in the trace",
            Some("run as root; on a locked-down kernel, test the kernel side in a VM (`xskdbg soak --vm`)"),
        ));
    }
    out
}

/// Loads every backend's real programs (attaching nothing).
#[cfg(feature = "probes")]
fn probe_backends() -> Vec<Check> {
    use xskdbg_probes::{try_load, Backend, ProbeError};
    let outcomes: Vec<(&str, BackendOutcome)> = Backend::AUTO_ORDER
        .iter()
        .map(|&b| {
            let o = match try_load(b) {
                Ok(l) => Ok((l.what, l.notes)),
                // The check names the backend already; the kernel's answer
                // and the failed step are what the reader needs.
                Err(ProbeError::Refused { what, cause, .. }) => Err(if what == "precheck" {
                    cause
                } else {
                    format!("{what} failed: {cause}")
                }),
                Err(e) => Err(e.to_string()),
            };
            (b.name(), o)
        })
        .collect();
    backend_checks(&outcomes)
}

/// This build has no probes to ask.
#[cfg(not(feature = "probes"))]
fn probe_backends() -> Vec<Check> {
    vec![check(
        "backends",
        Level::Warning,
        "probe backend checks are not built in: this xskdbg was built without its `kernel` feature",
        Some("install with the default features (`cargo install --path .`; needs clang, bpftool and kernel BTF)"),
    )]
}

fn in_netns<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let Some(ns) = ns else { return f() };
    let path = Path::new("/run/netns").join(ns);
    let handle = std::thread::spawn(move || -> std::io::Result<T> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // SAFETY: setns on a namespace fd for this thread only; the thread ends after f.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    });
    handle
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
}

fn named_netns() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn links_in(ns: Option<&str>) -> std::io::Result<Vec<netlink::Link>> {
    in_netns(ns, || netlink::Socket::open(libc::NETLINK_ROUTE)?.links())
}

fn namespace_checks(opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    let mut by_ns: Vec<(String, Vec<netlink::Link>)> = Vec::new();
    match links_in(None) {
        Ok(l) => by_ns.push(("(current)".into(), l)),
        Err(e) => out.push(check(
            "netlink",
            Level::Warning,
            format!("cannot list links: {e}"),
            None,
        )),
    }
    for ns in named_netns() {
        if let Ok(l) = links_in(Some(&ns)) {
            by_ns.push((ns, l));
        }
    }
    let collisions = ifindex_collisions(&by_ns);
    if collisions.is_empty() {
        out.push(check(
            "ifindex",
            Level::Ok,
            format!("no ifindex is used in two of {} namespaces", by_ns.len()),
            None,
        ));
    } else {
        for (idx, users) in collisions {
            let who: Vec<String> = users.iter().map(|(ns, n)| format!("{n} in {ns}")).collect();
            out.push(check(
                "ifindex",
                Level::Warning,
                format!("ifindex {idx} is used by {}", who.join(", ")),
                Some("shared UMEM across namespaces must key sockets by (netns cookie, ifindex, queue): libxdp before the netns-cookie fix fails with EINVAL here"),
            ));
        }
    }

    let Some(iface) = &opts.iface else { return out };
    let ns_label = opts.netns.clone().unwrap_or_else(|| "(current)".into());
    let Some(dev) = by_ns
        .iter()
        .find(|(ns, _)| *ns == ns_label)
        .and_then(|(_, ls)| ls.iter().find(|l| &l.name == iface))
        .cloned()
    else {
        out.push(check(
            "device",
            Level::Error,
            format!("no device {iface} in namespace {ns_label}"),
            Some("check the name with `ip link`, and pass --netns NAME for a device in a named namespace"),
        ));
        return out;
    };
    out.push(check(
        "device",
        Level::Ok,
        format!(
            "{} ifindex {} kind {} rx {} tx {} xdp {}",
            dev.name,
            dev.ifindex,
            dev.kind.as_deref().unwrap_or("(none)"),
            dev.rx_queues,
            dev.tx_queues,
            ["none", "driver", "generic", "offload", "multi"]
                .get(dev.xdp_attached as usize)
                .unwrap_or(&"?")
        ),
        None,
    ));
    let idx = dev.ifindex;
    match in_netns(opts.netns.as_deref(), move || {
        let mut s = netlink::Socket::open(libc::NETLINK_GENERIC)?;
        let fam = s.genl_family("netdev")?;
        s.xdp_features(fam, idx)
    }) {
        Ok(f) => out.push(check(
            "XDP features",
            Level::Ok,
            format!(
                "{}: {}; zero-copy {}",
                dev.name,
                if f.xdp == 0 {
                    "no XDP features reported".to_string()
                } else {
                    f.xdp_names().join(", ")
                },
                if f.zero_copy() {
                    "yes"
                } else {
                    "no (copy mode only)"
                }
            ),
            None,
        )),
        Err(e) => out.push(check(
            "XDP features",
            Level::Warning,
            format!("cannot query the netdev genl family: {e}"),
            Some("needs Linux 6.3+; older kernels do not report XDP features"),
        )),
    }
    if dev.kind.as_deref() == Some("veth") {
        let peer = dev.link.and_then(|pidx| {
            by_ns.iter().find_map(|(ns, ls)| {
                ls.iter()
                    .find(|l| {
                        l.ifindex == pidx
                            && l.link == Some(dev.ifindex)
                            && l.kind.as_deref() == Some("veth")
                            && !(*ns == ns_label && l.name == dev.name)
                    })
                    .map(|l| (format!("{}@{ns}", l.name), l.rx_queues, l.tx_queues))
            })
        });
        out.push(veth_queue_check(
            &dev.name,
            dev.rx_queues,
            dev.tx_queues,
            peer.as_ref().map(|(n, r, t)| (n.as_str(), *r, *t)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_rule() {
        assert_eq!(
            veth_queue_check("a", 4, 4, Some(("b", 4, 4))).level,
            Level::Ok
        );
        let c = veth_queue_check("a", 1, 4, Some(("b", 4, 4)));
        assert_eq!(c.level, Level::Error);
        assert!(
            c.detail.contains("1 rx queues < b's 4 tx queues"),
            "{}",
            c.detail
        );
        assert_eq!(veth_queue_check("a", 4, 4, None).level, Level::Warning);
    }

    #[test]
    fn finds_collisions_across_namespaces_only() {
        let l = |i, n: &str| netlink::Link {
            ifindex: i,
            name: n.into(),
            ..Default::default()
        };
        let by = vec![
            ("(current)".to_string(), vec![l(1, "lo"), l(5, "outer")]),
            (
                "inner-ns".to_string(),
                vec![l(1, "lo"), l(5, "inner"), l(6, "x")],
            ),
        ];
        let c = ifindex_collisions(&by);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, 5);
    }

    #[test]
    fn backends_are_reported_in_order_and_none_loading_is_an_error() {
        let c = backend_checks(&[
            ("fentry", Err("load fentry programs failed: EPERM".into())),
            (
                "tracepoint",
                Ok(("4 BPF programs".into(), vec!["raw_tp fallback".into()])),
            ),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].topic.as_str(), c[0].level),
            ("backend fentry", Level::Warning)
        );
        assert!(c[0].detail.contains("EPERM"), "{}", c[0].detail);
        assert_eq!(c[1].level, Level::Ok);
        assert_eq!(c[1].detail, "loads: 4 BPF programs; raw_tp fallback");
        let none = backend_checks(&[("kprobe", Err("no kprobe PMU".into()))]);
        assert_eq!(none.last().unwrap().topic, "probes");
        assert_eq!(none.last().unwrap().level, Level::Error);
    }

    #[test]
    fn caps() {
        assert!(caps_missing(u64::MAX).is_empty());
        let m = caps_missing(1 << 12);
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|(n, _)| *n != "CAP_NET_ADMIN"));
    }
}
