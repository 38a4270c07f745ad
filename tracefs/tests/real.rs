//! Against the real tracefs: needs root. Outside CI it skips with a reason;
//! in CI a missing tracefs or permission fails the test (`xskdbg-testenv`).

use xskdbg_testenv::Cap;
use xskdbg_tracefs::{Error, TraceFs};

#[test]
fn instance_marker_freeze_and_cleanup() {
    if !xskdbg_testenv::require(
        "instance_marker_freeze_and_cleanup",
        &[Cap::Root, Cap::Tracefs],
    ) {
        return;
    }
    let fs = TraceFs::find().unwrap();
    let name = format!("xskdbg-tracefs-test-{}", std::process::id());
    let dir;
    {
        let inst = fs.create_instance(&name).unwrap();
        dir = inst.dir().to_path_buf();
        inst.set_trace_clock("mono").unwrap();
        assert_eq!(inst.trace_clock().unwrap(), "mono");
        inst.set_buffer_size_kb(256).unwrap();
        // The kernel rounds up to whole sub-buffers.
        assert!(inst.buffer_size_kb().unwrap() >= 256);
        assert!(inst.tracing_on().unwrap());
        inst.enable_event("xdp", "xdp_exception").unwrap();
        assert_eq!(
            inst.read_file("events/xdp/xdp_exception/enable").unwrap(),
            b"1\n"
        );
        inst.disable_event("xdp", "xdp_exception").unwrap();
        assert!(matches!(
            inst.enable_event("xskdbg_no_such", "event").unwrap_err(),
            Error::EventMissing { .. }
        ));
        {
            let m = inst.open_marker().unwrap();
            m.write(b"xskdbg:1 hold n=1 a=1000").unwrap();
            inst.set_tracing_on(false).unwrap();
            let e = m.write(b"xskdbg:1 hold n=1 a=2000").unwrap_err();
            assert!(e.is_buffer_off(), "{e}");
        }
        let t = String::from_utf8(inst.read_trace().unwrap()).unwrap();
        assert!(
            t.contains("tracing_mark_write: xskdbg:1 hold n=1 a=1000"),
            "{t}"
        );
        assert!(!t.contains("a=2000"), "{t}");
    }
    assert!(!dir.exists(), "instance {} not removed", dir.display());
}
