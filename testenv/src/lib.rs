//! `xskdbg-testenv`: the one rule for tests that need something from the
//! machine (root, BPF, tracefs, network namespaces, a qemu guest, Chromium,
//! two CPUs), and the ledger of which of them the suite really used.
//!
//! - [`in_ci`]: the CI rule. `CI=true` or `CI=1` (the two spellings CI
//!   systems use) means CI; unset, empty, `false`, `0` or anything else
//!   means a developer's machine.
//! - [`require`] / [`require_and`]: a test asks for its [`Cap`]abilities
//!   first. When one is missing the test skips with the reason printed
//!   (`SKIP <test>: ...`), except in CI, where it fails: CI never skips
//!   silently.
//! - The ledger: when a test may run, one line per capability it asked for
//!   is appended to the file named by [`LEDGER_ENV`] (`scripts/test.sh` sets
//!   it), `<capability>\t<test binary>\t<test>`. The script counts them at
//!   the end (`ran: root 23, bpf 11, ...`) and, in CI, fails when the machine
//!   has a capability that no test used.
//!
//! [`Cap::missing`] and the probes in `scripts/test.sh` must agree on what
//! each capability means; both say it the same way.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the ledger file (unset: no ledger).
pub const LEDGER_ENV: &str = "XSKDBG_TEST_LEDGER";

/// Something a test needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// CAP_SYS_ADMIN and CAP_NET_ADMIN (root).
    Root,
    /// Loading BPF programs: root and a kernel with BPF (`/sys/fs/bpf` or the JIT knob).
    Bpf,
    /// A mounted tracefs, written as root.
    Tracefs,
    /// Network namespaces and veth pairs: root and iproute2's `ip`.
    Netns,
    /// A qemu guest: `qemu-system-x86_64` on PATH.
    Guest,
    /// Headless Chromium (Debian's `chromium`, or `XSKDBG_CHROMIUM`).
    Chromium,
    /// At least two CPUs this process may run on.
    TwoCpus,
}

impl Cap {
    /// Every capability, in the order of the ledger's count line.
    pub const ALL: [Cap; 7] = [
        Cap::Root,
        Cap::Bpf,
        Cap::Tracefs,
        Cap::Netns,
        Cap::Guest,
        Cap::Chromium,
        Cap::TwoCpus,
    ];

    /// The name in the ledger, the count line and `scripts/test.sh`.
    pub fn name(self) -> &'static str {
        match self {
            Cap::Root => "root",
            Cap::Bpf => "bpf",
            Cap::Tracefs => "tracefs",
            Cap::Netns => "netns",
            Cap::Guest => "guest",
            Cap::Chromium => "chromium",
            Cap::TwoCpus => "2cpus",
        }
    }

    /// Why this machine lacks the capability, or `None` when it has it.
    pub fn missing(self) -> Option<String> {
        let root = || {
            (!has_admin_caps()).then(|| {
                "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run the tests as root".to_string()
            })
        };
        match self {
            Cap::Root => root(),
            Cap::Bpf => root().or_else(|| {
                let bpf = Path::new("/sys/fs/bpf").exists()
                    || Path::new("/proc/sys/net/core/bpf_jit_enable").exists();
                (!bpf).then(|| "kernel without BPF support (no /sys/fs/bpf)".to_string())
            }),
            Cap::Tracefs => root().or_else(|| {
                tracefs_root().is_none().then(|| {
                    "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing; scripts/setup.sh test does)"
                        .to_string()
                })
            }),
            Cap::Netns => root().or_else(|| {
                sbin_tool("ip").is_none().then(|| {
                    "no `ip` in /usr/sbin, /sbin, /usr/bin or /bin: install iproute2 (scripts/setup.sh test)"
                        .to_string()
                })
            }),
            Cap::Guest => on_path("qemu-system-x86_64").is_none().then(|| {
                "qemu-system-x86_64 not installed (install qemu-system-x86: scripts/setup.sh test)"
                    .to_string()
            }),
            Cap::Chromium => chromium().is_none().then(|| {
                "no chromium on PATH: install Debian's chromium (scripts/setup.sh test) or set XSKDBG_CHROMIUM"
                    .to_string()
            }),
            Cap::TwoCpus => {
                let n = allowed_cpus();
                (n < 2).then(|| format!("needs two CPUs, this process may use {n}"))
            }
        }
    }
}

/// Whether the tests run in CI: `CI=true` or `CI=1`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `test` may run with every capability of `caps`. When one is
/// missing: prints `SKIP <test>: <why>` and returns false, or, in CI,
/// panics (the test fails). When all are there, the ledger gets one line
/// per capability and the answer is true.
#[track_caller]
pub fn require(test: &str, caps: &[Cap]) -> bool {
    require_and(test, caps, || Ok(()))
}

/// [`require`], where the test also needs something of its own (`extra`,
/// asked only when every capability is there, e.g. Debian's kernel package
/// for a guest): an `Err` skips or fails like a missing capability, with
/// its text as the reason.
#[track_caller]
pub fn require_and(test: &str, caps: &[Cap], extra: impl FnOnce() -> Result<(), String>) -> bool {
    let why = caps
        .iter()
        .find_map(|c| c.missing())
        .or_else(|| extra().err());
    match why {
        Some(why) if in_ci() => panic!("{test}: CI is set and this test cannot run: {why}"),
        Some(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
        None => {
            record(test, caps);
            true
        }
    }
}

/// Appends `test`'s use of `caps` to the ledger (when [`LEDGER_ENV`] is set).
pub fn record(test: &str, caps: &[Cap]) {
    if let Some(path) = std::env::var_os(LEDGER_ENV) {
        record_to(Path::new(&path), test, caps);
    }
}

fn record_to(path: &Path, test: &str, caps: &[Cap]) {
    let binary = test_binary();
    let lines: String = caps
        .iter()
        .map(|c| format!("{}\t{binary}\t{test}\n", c.name()))
        .collect();
    // One append-mode write: lines of tests running in parallel never interleave.
    let r = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(lines.as_bytes()));
    if let Err(e) = r {
        eprintln!(
            "xskdbg-testenv: cannot append to the ledger {}: {e}",
            path.display()
        );
    }
}

/// The test binary's name without cargo's hash (`veth_xsk-1a2b3c` → `veth_xsk`).
fn test_binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "?".into());
    match name.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            base.to_string()
        }
        _ => name,
    }
}

/// The headless browser the HTML tests drive: `XSKDBG_CHROMIUM`, else the
/// first of chromium, chromium-browser, google-chrome(-stable) on PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("XSKDBG_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find_map(on_path)
}

/// `name` in a directory of PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A system tool where iproute2 installs it, not busybox's applet.
fn sbin_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::canonicalize(p).is_ok_and(|real| {
                !real
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().contains("busybox"))
            })
        })
}

/// Where tracefs is mounted, if anywhere.
fn tracefs_root() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("trace").exists())
}

/// CAP_SYS_ADMIN and CAP_NET_ADMIN in this process's effective set.
fn has_admin_caps() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0);
    let need = (1u64 << CAP_SYS_ADMIN) | (1u64 << CAP_NET_ADMIN);
    eff & need == need
}

/// CPUs in this process's affinity mask.
fn allowed_cpus() -> usize {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: CPU_COUNT reads the set within its size.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_one_word() {
        let mut names: Vec<&str> = Cap::ALL.iter().map(|c| c.name()).collect();
        assert!(names.iter().all(|n| !n.contains(char::is_whitespace)));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Cap::ALL.len());
    }

    #[test]
    fn root_is_behind_every_privileged_capability() {
        if has_admin_caps() {
            return;
        }
        for c in [Cap::Root, Cap::Bpf, Cap::Tracefs, Cap::Netns] {
            assert!(c.missing().unwrap().contains("root"), "{c:?}");
        }
    }

    #[test]
    fn the_ledger_gets_one_line_per_capability_appended() {
        let dir = std::env::temp_dir().join(format!("xskdbg-testenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger");
        std::fs::write(&path, "root\tother\tearlier\n").unwrap();
        record_to(&path, "t1", &[Cap::Root, Cap::Guest]);
        record_to(&path, "t2", &[Cap::TwoCpus]);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            text,
            "root\tother\tearlier\n\
             root\txskdbg_testenv\tt1\nguest\txskdbg_testenv\tt1\n\
             2cpus\txskdbg_testenv\tt2\n"
        );
    }

    #[test]
    fn a_cargo_hash_is_cut_from_the_binary_name() {
        // The test binary itself is named `xskdbg_testenv-<16 hex>`.
        assert_eq!(test_binary(), "xskdbg_testenv");
    }
}
