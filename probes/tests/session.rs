//! Root tests of a recording session (the engine of `xskdbg record`): stop on
//! freeze and on command exit, the trace saved, nothing left behind.

mod common;

use std::time::Duration;

use common::{require, Cap};
use xskdbg_probes::session::{record, SessionOpts, Stop};
use xskdbg_probes::{Backend, Filters};

fn opts(tag: &str, cmd: &str) -> SessionOpts {
    SessionOpts {
        backend: Backend::Auto,
        filters: Filters::default(),
        instance: format!("xskdbg-stest-{tag}-{}", std::process::id()),
        buffer_kb: 1024,
        out: std::env::temp_dir().join(format!("xskdbg-stest-{tag}-{}.txt", std::process::id())),
        command: vec!["sh".into(), "-c".into(), cmd.into()],
        duration: Some(Duration::from_secs(60)),
        stacks: false,
        output: Default::default(),
    }
}

/// Sessions of this file run one at a time: each restores the top-level
/// bpf_trace_printk enable it found, which a parallel one would change.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn top_printk_enable() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/events/bpf_trace/bpf_trace_printk/enable")
        .unwrap_or_default()
}

/// The command writes a line and freezes tracing: the session stops on the
/// freeze, ends the command, saves a trace holding the probe header and the
/// line, and removes its instance.
#[test]
fn session_stops_on_freeze_and_cleans_up() {
    if !require(
        "session_stops_on_freeze_and_cleans_up",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs],
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = top_printk_enable();
    let o = opts(
        "frz",
        "m=$XSKDBG_TRACEFS/instances/$XSKDBG_INSTANCE; \
         echo 'xskdbg:1 hold n=1 a=1000' > $m/trace_marker; echo 0 > $m/tracing_on; sleep 30",
    );
    let mut msgs = Vec::new();
    let out = record(&o, &mut |m| msgs.push(m.to_string()), &|| false).unwrap();
    assert_eq!(out.stop, Stop::Freeze, "{msgs:?}");
    assert!(
        out.command_status.is_some_and(|s| !s.success()),
        "the command was ended: {:?}",
        out.command_status
    );
    let t = std::fs::read_to_string(&o.out).unwrap();
    assert!(t.contains("xskdbg:1 probe backend="), "{t}");
    assert!(t.contains("xskdbg:1 hold n=1 a=1000"), "{t}");
    assert!(
        !std::path::Path::new(&format!("/sys/kernel/tracing/instances/{}", o.instance)).exists(),
        "instance left behind"
    );
    assert_eq!(
        top_printk_enable(),
        before,
        "top-level bpf_trace_printk enable not restored"
    );
    std::fs::remove_file(&o.out).unwrap();
}

/// The command exits on its own: the session stops with its status.
#[test]
fn session_stops_when_the_command_exits() {
    if !require(
        "session_stops_when_the_command_exits",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs],
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = opts("exit", "exit 3");
    let out = record(&o, &mut |_| {}, &|| false).unwrap();
    assert_eq!(out.stop, Stop::Exit);
    assert_eq!(out.command_status.and_then(|s| s.code()), Some(3));
    assert!(std::fs::read_to_string(&o.out)
        .unwrap()
        .contains("xskdbg:1 probe"));
    assert!(
        !std::path::Path::new(&format!("/sys/kernel/tracing/instances/{}", o.instance)).exists()
    );
    std::fs::remove_file(&o.out).unwrap();
}
