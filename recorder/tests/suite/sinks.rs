//! Sinks: trace_marker through the tracefs seam (fake, no root needed),
//! batching and line splitting, freezing, errors that name the path.

use std::path::Path;
use std::sync::Arc;

use xskdbg_recorder::tracefs::fake::FakeSys;
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_recorder::{
    Policy, PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, XdpDesc,
};

use super::common::{seed_umem, SK};

fn fake_marker() -> (Arc<FakeSys>, TraceFs) {
    let sys = Arc::new(FakeSys::new("/fake/tracing"));
    let fs = TraceFs::at_with(sys.clone(), "/fake/tracing").unwrap();
    (sys, fs)
}

fn trace_lines(buf: &xskdbg_recorder::tracefs::Buffer) -> Vec<String> {
    String::from_utf8(buf.read_trace().unwrap())
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once("tracing_mark_write: ")
                .map(|(_, b)| super::common::without_seq(b))
        })
        .collect()
}

#[test]
fn one_marker_write_per_batch_and_freeze_on_violation() {
    let (_sys, fs) = fake_marker();
    let inst = fs.create_instance("rec").unwrap();
    let rec = Recorder::new(
        RecorderConfig::new(SinkConfig::Buffer(inst.buffer()))
            .policy(Policy::Log)
            .post_trigger(xskdbg_recorder::PostTrigger::NONE),
    )
    .unwrap();
    let u = rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s = p.socket(SockConfig::new(SK)).unwrap();
    let frames: Vec<u64> = (0..32u64).map(|i| i * 2048).collect();
    p.fill(&frames);
    let descs: Vec<XdpDesc> = frames.iter().map(|&a| XdpDesc::new(a + 256, 64)).collect();
    s.rx(&descs);
    let lines = trace_lines(&inst);
    // umem, pool, sock, then one line per batch of 32.
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(lines[3].starts_with("xskdbg:1 fill pool=1 n=20 a=0,800,1000,"));
    assert!(lines[4].starts_with("xskdbg:1 rx sk=1:5:1 pool=1 idx=0 n=20 d=100:40,900:40,"));
    assert!(inst.tracing_on().unwrap());
    s.tx(&[XdpDesc::new(0x100, 64)]);
    s.tx(&[XdpDesc::new(0x100, 64)]);
    assert!(!inst.tracing_on().unwrap(), "not frozen");
    let lines = trace_lines(&inst);
    assert_eq!(
        lines.last().unwrap(),
        "xskdbg:1 violation kind=duplicate_in_flight sk=1:5:1 pool=1 a=100 frame=0 from=tx to=tx"
    );
    assert_eq!(rec.violations(), 1);
    // Later batches are not written (and not counted as sink errors).
    p.fill(&[0x8000]);
    assert_eq!(trace_lines(&inst).len(), lines.len());
    assert_eq!(rec.sink_errors(), 0);
    drop((s, p, u, rec));
    inst.remove().unwrap();
}

#[test]
fn big_batches_are_split_below_the_marker_limit() {
    let (_sys, fs) = fake_marker();
    let rec = Recorder::new(RecorderConfig::new(SinkConfig::Buffer(fs.top()))).unwrap();
    let u = rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s = p.socket(SockConfig::new(SK)).unwrap();
    let frames: Vec<u64> = (0..250u64).map(|i| 0x1ff0000 - i * 2048).collect();
    p.fill(&frames);
    let descs: Vec<XdpDesc> = frames
        .iter()
        .map(|&a| XdpDesc {
            addr: a + 256,
            len: 0xffff,
            options: 1,
        })
        .collect();
    s.rx_at(0xfffffff0, &descs);
    let lines = trace_lines(&fs.top());
    let rx: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("xskdbg:1 rx "))
        .collect();
    // Kernels before 6.10 cut marker writes at 1024 bytes: every line stays
    // below that, and the lines together carry the whole batch with
    // consecutive ring indexes.
    assert!(rx.len() >= 3, "{rx:?}");
    let mut next = 0xfffffff0u32;
    let mut total = 0u32;
    for l in &rx {
        assert!(l.len() < 1024, "{} bytes: {l}", l.len());
        let field = |k: &str| {
            let v = l.split(' ').find_map(|f| f.strip_prefix(k)).unwrap();
            u32::from_str_radix(v, 16).unwrap()
        };
        assert_eq!(field("idx="), next, "{l}");
        let n = field("n=");
        assert_eq!(
            l.split(" d=").nth(1).unwrap().split(',').count() as u32,
            n,
            "{l}"
        );
        next = next.wrapping_add(n);
        total += n;
    }
    assert_eq!(total, 250);
    let fills: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("xskdbg:1 fill "))
        .collect();
    assert!(fills.len() >= 2, "{fills:?}");
    let mut filled = 0;
    for l in &fills {
        assert!(l.len() < 1024, "{} bytes: {l}", l.len());
        let n = l.split(' ').find_map(|f| f.strip_prefix("n=")).unwrap();
        filled += usize::from_str_radix(n, 16).unwrap();
    }
    assert_eq!(filled, 250);
}

#[test]
fn a_missing_instance_names_the_path_and_the_fix() {
    let (_sys, fs) = fake_marker();
    let e = fs.instance("nope").unwrap_err();
    let msg = xskdbg_recorder::Error::from(e).to_string();
    assert!(msg.contains("/fake/tracing/instances/nope"), "{msg}");
    assert!(msg.contains("mkdir"), "{msg}");
}

#[test]
fn recorder_new_reports_tracefs_problems_instead_of_panicking() {
    // On this machine either tracefs is reachable (then the instance is
    // missing) or it is not (not mounted / no permission): an error either way.
    let name = format!("xskdbg-no-such-instance-{}", std::process::id());
    let e = Recorder::new(RecorderConfig::new(SinkConfig::TraceMarker {
        instance: Some(name.clone()),
    }))
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("instances/{name}")) || msg.contains("mount -t tracefs"),
        "{msg}"
    );
}

#[test]
fn a_denied_marker_is_an_error_with_the_path() {
    let (sys, fs) = fake_marker();
    sys.deny("/fake/tracing/trace_marker");
    let e = Recorder::new(RecorderConfig::new(SinkConfig::Buffer(fs.top()))).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/fake/tracing/trace_marker") && msg.contains("root"),
        "{msg}"
    );
    assert!(Path::new("/").exists());
}

#[test]
fn memory_ring_dump_goes_to_a_file_on_violation() {
    let dir = std::env::temp_dir().join(format!("xskdbg-rec-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flight.txt");
    let rec = Recorder::new(RecorderConfig {
        post_trigger: xskdbg_recorder::PostTrigger::NONE,
        sink: SinkConfig::Memory { events: 16 },
        policy: Policy::Log,
        dump: xskdbg_recorder::DumpTarget::File(path.clone()),
        freeze: true,
        stacks: false,
        rearm: false,
    })
    .unwrap();
    let u = rec.umem(seed_umem()).unwrap();
    for i in 0..100u64 {
        u.hold(&[i * 2048]);
    }
    u.hold(&[0]);
    let text = std::fs::read_to_string(&path).unwrap();
    let body: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split_once("tracing_mark_write: ")
                .map(|(_, b)| super::common::without_seq(b))
        })
        .collect();
    assert_eq!(body.len(), 16, "{text}");
    assert_eq!(
        body.last().unwrap(),
        "xskdbg:1 violation kind=duplicate_in_flight a=0 frame=0 from=held to=held"
    );
    assert!(body.iter().any(|l| l == "xskdbg:1 hold umem=1 n=1 a=31800"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stacks_are_captured_and_symbolized() {
    let seen: Arc<std::sync::Mutex<Vec<xskdbg_recorder::Violation>>> = Arc::default();
    let s2 = seen.clone();
    let rec = Recorder::new(RecorderConfig {
        post_trigger: xskdbg_recorder::PostTrigger::NONE,
        sink: SinkConfig::Memory { events: 64 },
        policy: Policy::Callback(Arc::new(move |v| s2.lock().unwrap().push(v.clone()))),
        dump: xskdbg_recorder::DumpTarget::None,
        freeze: true,
        stacks: true,
        rearm: false,
    })
    .unwrap();
    let u = rec.umem(seed_umem()).unwrap();
    u.hold(&[0x800]);
    u.hold(&[0x800]);
    let v = seen.lock().unwrap()[0].clone();
    assert!(
        v.stack
            .iter()
            .any(|f| f.contains("stacks_are_captured_and_symbolized")),
        "{:#?}",
        v.stack
    );
    // The recorder's own frames are left out.
    assert!(v.stack.iter().all(|f| !f.contains("xskdbg_recorder::on::")));
    let dump = String::from_utf8(rec.dump()).unwrap();
    assert!(
        dump.contains("tracing_mark_write: xskdbg:1 stack seq=") && dump.contains(" i=0 sym="),
        "{dump}"
    );
    let report = xskdbg_analyzer::analyze_reader(dump.as_bytes(), &Default::default()).unwrap();
    assert_eq!(report.summary.lines_skipped, 0);
}
