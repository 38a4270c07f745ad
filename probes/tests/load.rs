//! Root test: `try_load`, what `xskdbg doctor` asks, on this kernel. The
//! tracepoint backend (what a locked-down host allows) loads, the top-level
//! bpf_trace_printk event the load enables is put back, and `auto` is
//! refused as no backend. The function
//! backends are loaded in the guest (`guest_try_load` in guest.rs).

mod common;

use common::{require, Cap};
use xskdbg_probes::{try_load, Backend, ProbeError};

const TOP_PRINTK: &str = "/sys/kernel/tracing/events/bpf_trace/bpf_trace_printk/enable";

#[test]
fn the_tracepoint_backend_loads_and_leaves_nothing_behind() {
    if !require(
        "the_tracepoint_backend_loads_and_leaves_nothing_behind",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs],
    ) {
        return;
    }
    let before = std::fs::read_to_string(TOP_PRINTK).unwrap_or_default();
    // Whatever happens below, the switch is left as it was found.
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            if !self.0.is_empty() {
                let _ = std::fs::write(TOP_PRINTK, self.0.trim());
            }
        }
    }
    let _restore = Restore(before.clone());
    let l = try_load(Backend::Tracepoint).unwrap();
    assert!(
        l.what.ends_with("BPF programs loaded (not attached)"),
        "{l:?}"
    );
    let n: usize = l.what.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3, "{l:?}");
    assert_eq!(
        std::fs::read_to_string(TOP_PRINTK).unwrap_or_default(),
        before,
        "the load changed the top-level bpf_trace_printk enable"
    );
    assert!(matches!(
        try_load(Backend::Auto).unwrap_err(),
        ProbeError::Usage(_)
    ));
}
