//! What a real AF_XDP run needs from this machine (root, `ip`, BPF), asked
//! before building anything so the answer names the missing piece. The
//! soak asks it at run time; tests use `xskdbg-testenv` (skip, or fail in
//! CI) with the same capabilities.

use crate::sys::{self, Tool};

/// What this environment lacks for a real AF_XDP run, if anything.
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
