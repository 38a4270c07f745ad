//! Root test: `detach --all` finds and removes a leftover `xskdbg-*` ftrace
//! instance (what a SIGKILLed `xskdbg record` leaves). Its own test binary:
//! detach_all removes every project instance, so nothing may run beside it.

mod common;

#[test]
fn detach_all_removes_a_leftover_instance() {
    if !common::require(
        "detach_all_removes_a_leftover_instance",
        &[common::Cap::Root, common::Cap::Tracefs],
    ) {
        return;
    }
    let name = format!("xskdbg-left-{}", std::process::id());
    let dir = std::path::Path::new("/sys/kernel/tracing/instances").join(&name);
    std::fs::create_dir(&dir).unwrap();
    let left = xskdbg_probes::leftovers().unwrap();
    assert!(left.contains(&format!("instance {name}")), "{left:?}");
    let removed = xskdbg_probes::detach_all().unwrap();
    assert!(removed.contains(&format!("instance {name}")), "{removed:?}");
    assert!(!dir.exists());
}
