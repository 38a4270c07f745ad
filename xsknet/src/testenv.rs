//! The precondition check of root tests: run, skip with a printed reason, or
//! (under `CI=true`) fail, because CI must never silently skip.

use crate::sys::{self, Tool};

/// Whether tests run in CI (`CI=true`), where a missing capability fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// What this environment lacks for a real AF_XDP test, if anything.
pub fn missing_requirements() -> Option<String> {
    if !sys::has_admin_caps() {
        return Some("needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) for netns, veth and XDP".into());
    }
    if let Err(e) = sys::tool_path(Tool::Ip) {
        return Some(e.to_string());
    }
    if !std::path::Path::new("/sys/fs/bpf").exists()
        && !std::path::Path::new("/proc/sys/net/core/bpf_jit_enable").exists()
    {
        return Some("kernel without BPF support".into());
    }
    None
}

/// Returns true when the test may run. Otherwise prints why and returns
/// false, or panics under `CI=true`.
pub fn require_root(test: &str) -> bool {
    match missing_requirements() {
        None => true,
        Some(why) if in_ci() => panic!("{test}: CI=true and {why}"),
        Some(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}
