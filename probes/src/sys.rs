//! The kernel-facing reads of this crate that are not BPF or tracefs writes:
//! `uname`, `/proc/kallsyms`, `/sys/kernel/btf/vmlinux`, `/proc/<pid>/fd`.
//! Everything here is a thin read; the decisions live in [`crate::backend`].

use std::path::Path;

use xskdbg_tracefs::TraceFs;

use crate::backend::{Caps, OPTIONAL_FUNCS, REQUIRED_FUNCS};
use crate::filter::socket_inodes;

/// Where the kernel exposes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `uname -r` of the running kernel.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Which of `names` appear as text symbols in kallsyms content (`addr type
/// name [module]` per line). Pure.
pub fn symbols_present(kallsyms: &str, names: &[&str]) -> Vec<bool> {
    let mut found = vec![false; names.len()];
    for line in kallsyms.lines() {
        let mut it = line.split_whitespace();
        let (_, ty, name) = match (it.next(), it.next(), it.next()) {
            (Some(a), Some(t), Some(n)) => (a, t, n),
            _ => continue,
        };
        if !matches!(ty, "t" | "T") {
            continue;
        }
        for (i, n) in names.iter().enumerate() {
            if *n == name {
                found[i] = true;
            }
        }
    }
    found
}

/// Measures what the running kernel offers.
pub fn caps(tfs: &TraceFs) -> Caps {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let names: Vec<&str> = REQUIRED_FUNCS
        .iter()
        .chain(OPTIONAL_FUNCS.iter())
        .copied()
        .collect();
    let found = symbols_present(&kallsyms, &names);
    let mut caps = Caps {
        release: kernel_release(),
        btf: Path::new(VMLINUX_BTF).exists(),
        kprobe_events: tfs.sys().exists(&tfs.root().join("kprobe_events")),
        kprobe_pmu: Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
        tracepoints: tfs.top().has_event("xdp", "xdp_redirect")
            && tfs.top().has_event("napi", "napi_poll"),
        ..Caps::default()
    };
    for (n, f) in names.iter().zip(found) {
        if f {
            caps.funcs_present.push((*n).to_string());
        } else {
            caps.funcs_missing.push((*n).to_string());
        }
    }
    caps
}

/// Socket inodes held open by process `pid` (all its threads share the fd
/// table). An exited process has none.
pub fn process_socket_inodes(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fd");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let targets: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    socket_inodes(targets.iter().map(String::as_str))
}

/// Kernel version as (major, minor) from a release string like `6.1.0-27-cloud-amd64`.
pub fn version_of(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_text_symbols_only() {
        let k = "ffffffff81000000 T _stext\n\
                 ffffffff81a00000 t __xsk_rcv_zc\n\
                 ffffffff81a00100 d xsk_destruct_skb\n\
                 ffffffff81a00200 T sock_def_readable\n\
                 ffffffffc0000000 t foo [veth]\n";
        assert_eq!(
            symbols_present(
                k,
                &["__xsk_rcv_zc", "xsk_destruct_skb", "sock_def_readable", "x"]
            ),
            vec![true, false, true, false]
        );
    }

    #[test]
    fn versions() {
        assert_eq!(version_of("6.1.0-27-cloud-amd64"), Some((6, 1)));
        assert_eq!(version_of("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(version_of("garbage"), None);
    }
}
