use super::*;
use crate::fake::FakeSys;

fn fake() -> (Arc<FakeSys>, TraceFs) {
    let sys = Arc::new(FakeSys::new("/t"));
    let fs = TraceFs::at_with(sys.clone(), "/t").unwrap();
    (sys, fs)
}

#[test]
fn find_reports_every_place_and_the_mount_hint() {
    let sys = Arc::new(FakeSys::new("/elsewhere"));
    let e = TraceFs::find_with(sys, &MOUNT_POINTS).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("/sys/kernel/tracing/trace"), "{msg}");
    assert!(msg.contains("/sys/kernel/debug/tracing/trace"), "{msg}");
    assert!(msg.contains("mount -t tracefs"), "{msg}");
}

#[test]
fn locate_prefers_the_given_path_then_the_usual_places() {
    let sys = Arc::new(FakeSys::new("/mnt/tr"));
    let (fs, how) =
        TraceFs::locate_with(sys.clone(), Some(Path::new("/mnt/tr")), &MOUNT_POINTS).unwrap();
    assert_eq!((fs.root(), how), (Path::new("/mnt/tr"), Located::Given));
    let sys = Arc::new(FakeSys::new("/sys/kernel/tracing"));
    // A given path without tracefs (set by a parent in another mount
    // namespace) falls back to the usual place.
    let (fs, how) =
        TraceFs::locate_with(sys, Some(Path::new("/elsewhere")), &MOUNT_POINTS).unwrap();
    assert_eq!(
        (fs.root(), how),
        (Path::new("/sys/kernel/tracing"), Located::Usual)
    );
}

#[test]
fn locate_reads_the_mount_table() {
    let sys = Arc::new(FakeSys::new("/srv/my tracing"));
    sys.put_file(
        MOUNT_TABLE,
        b"sysfs /sys sysfs rw 0 0\ntracefs /srv/my\\040tracing tracefs rw,nosuid 0 0\n",
    );
    let (fs, how) = TraceFs::locate_with(sys, None, &MOUNT_POINTS).unwrap();
    assert_eq!(
        (fs.root(), how),
        (Path::new("/srv/my tracing"), Located::MountTable)
    );
}

#[test]
fn locate_mounts_what_ip_netns_exec_hid() {
    // `ip netns exec` remounts /sys: /sys/kernel/tracing is an empty
    // directory of sysfs until tracefs is mounted on it again.
    let sys = Arc::new(FakeSys::unmounted("/sys/kernel/tracing"));
    assert!(TraceFs::find_with(sys.clone(), &MOUNT_POINTS).is_err());
    let (fs, how) = TraceFs::locate_with(sys.clone(), None, &MOUNT_POINTS).unwrap();
    assert_eq!(
        (fs.root(), how),
        (Path::new("/sys/kernel/tracing"), Located::MountedNow)
    );
    fs.top()
        .open_marker()
        .unwrap()
        .write(b"after mount")
        .unwrap();

    let sys = Arc::new(FakeSys::unmounted("/sys/kernel/tracing"));
    sys.deny_mount();
    let e = TraceFs::locate_with(sys, None, &MOUNT_POINTS).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::MountFailed { .. }), "{msg}");
    for want in [
        "ip netns exec",
        "nsenter --net",
        "run as root",
        "/sys/kernel/tracing",
    ] {
        assert!(msg.contains(want), "{want}: {msg}");
    }
}

#[test]
fn find_takes_the_second_mount_point() {
    let sys = Arc::new(FakeSys::new("/sys/kernel/debug/tracing"));
    let fs = TraceFs::find_with(sys, &MOUNT_POINTS).unwrap();
    assert_eq!(fs.root(), Path::new("/sys/kernel/debug/tracing"));
}

#[test]
fn instance_lifecycle_and_guard() {
    let (sys, fs) = fake();
    assert!(matches!(
        fs.instance("x").unwrap_err(),
        Error::InstanceMissing { .. }
    ));
    {
        let inst = fs.create_instance("x").unwrap();
        assert!(sys.exists(Path::new("/t/instances/x/trace_marker")));
        assert!(matches!(
            fs.create_instance("x").unwrap_err(),
            Error::InstanceExists { .. }
        ));
        assert_eq!(inst.name(), Some("x"));
        fs.instance("x").unwrap();
    }
    assert!(!sys.exists(Path::new("/t/instances/x")));
    let kept = fs.create_instance("y").unwrap().keep();
    assert!(sys.exists(&kept.path("trace")));
    fs.create_instance("z").unwrap().remove().unwrap();
    assert!(!sys.exists(Path::new("/t/instances/z")));
}

#[test]
fn instances_are_listed_and_leftovers_removed_by_name() {
    let (sys, fs) = fake();
    assert!(fs.instance_names().unwrap().is_empty());
    let kept = fs.create_instance("b").unwrap().keep();
    let _a = fs.create_instance("a").unwrap();
    assert_eq!(fs.instance_names().unwrap(), ["a", "b"]);
    fs.remove_instance("b").unwrap();
    assert!(!sys.exists(kept.dir()));
    // Gone already: nothing to do.
    fs.remove_instance("b").unwrap();
    assert_eq!(fs.instance_names().unwrap(), ["a"]);
    assert!(matches!(
        fs.remove_instance("../x").unwrap_err(),
        Error::InvalidName { .. }
    ));
}

#[test]
fn bad_names_are_refused() {
    let (_sys, fs) = fake();
    for n in ["", "..", "a/b", "a b"] {
        assert!(matches!(
            fs.create_instance(n).unwrap_err(),
            Error::InvalidName { .. }
        ));
    }
}

#[test]
fn marker_writes_land_in_trace_and_stop_when_off() {
    let (_sys, fs) = fake();
    let b = fs.top();
    let m = b.open_marker().unwrap();
    m.write(b"hello one").unwrap();
    m.write(b"hello two").unwrap();
    let t = String::from_utf8(b.read_trace().unwrap()).unwrap();
    assert!(t.contains("tracing_mark_write: hello one\n"), "{t}");
    assert!(t.contains("tracing_mark_write: hello two\n"), "{t}");
    b.set_tracing_on(false).unwrap();
    assert!(!b.tracing_on().unwrap());
    let e = m.write(b"lost").unwrap_err();
    assert!(e.is_buffer_off(), "{e}");
    let big = vec![b'a'; TRACE_MARKER_MAX_SIZE + 1];
    assert!(matches!(m.write(&big).unwrap_err(), Error::TooLong { .. }));
    b.clear().unwrap();
    let t = String::from_utf8(b.read_trace().unwrap()).unwrap();
    assert!(!t.contains("hello"), "{t}");
}

#[test]
fn control_files() {
    let (_sys, fs) = fake();
    let inst = fs.create_instance("c").unwrap();
    assert_eq!(inst.trace_clock().unwrap(), "local");
    inst.set_trace_clock("mono").unwrap();
    assert_eq!(inst.trace_clock().unwrap(), "mono");
    assert!(inst.set_trace_clock("nonsense").is_err());
    inst.set_buffer_size_kb(4096).unwrap();
    assert_eq!(inst.buffer_size_kb().unwrap(), 4096);
    inst.enable_event("xdp", "xdp_exception").unwrap();
    assert_eq!(
        inst.read_file("events/xdp/xdp_exception/enable").unwrap(),
        b"1"
    );
    inst.disable_event("xdp", "xdp_exception").unwrap();
    let e = inst.enable_event("nope", "nothing").unwrap_err();
    assert!(e.to_string().contains("events/nope/nothing/enable"), "{e}");
}

#[test]
fn permission_errors_name_the_path_and_the_fix() {
    let (sys, fs) = fake();
    sys.deny("/t/tracing_on");
    let e = fs.top().set_tracing_on(false).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("/t/tracing_on") && msg.contains("root"),
        "{msg}"
    );
}

#[test]
fn busy_instance_is_retried_then_reported() {
    let (sys, fs) = fake();
    let inst = fs.create_instance("busy").unwrap();
    sys.set_busy("/t/instances/busy", true);
    let e = inst.remove().unwrap_err();
    assert!(e.to_string().contains("/t/instances/busy"), "{e}");
    sys.set_busy("/t/instances/busy", false);
    fs.instance("busy").unwrap();
}

#[test]
fn save_trace_is_atomic_and_complete() {
    let (_sys, fs) = fake();
    let b = fs.top();
    b.open_marker().unwrap().write(b"saved line").unwrap();
    let dir = std::env::temp_dir().join(format!("xskdbg-tracefs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("trace.txt");
    b.save_trace(&dest).unwrap();
    let got = std::fs::read_to_string(&dest).unwrap();
    assert!(got.contains("saved line"));
    std::fs::remove_dir_all(&dir).unwrap();
}
