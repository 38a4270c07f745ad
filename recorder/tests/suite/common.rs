//! Shared helpers: a recorder on an in-memory ring whose violations are collected.

use std::sync::{Arc, Mutex};

use xskdbg_recorder::{
    DumpTarget, Policy, PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, SockKey,
    StatsSource, UmemConfig, Violation, XdpStats,
};

/// A recorder with a memory sink and a collecting callback.
pub struct Rig {
    pub rec: Recorder,
    pub seen: Arc<Mutex<Vec<Violation>>>,
}

impl Rig {
    pub fn new(freeze: bool) -> Rig {
        let seen: Arc<Mutex<Vec<Violation>>> = Arc::default();
        let s2 = seen.clone();
        let cfg = RecorderConfig {
            post_trigger: xskdbg_recorder::PostTrigger::NONE,
            sink: SinkConfig::Memory { events: 4096 },
            policy: Policy::Callback(Arc::new(move |v| s2.lock().unwrap().push(v.clone()))),
            dump: DumpTarget::None,
            freeze,
            stacks: false,
            rearm: false,
        };
        Rig {
            rec: Recorder::new(cfg).unwrap(),
            seen,
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.seen.lock().unwrap().clone()
    }

    /// The project lines written so far (memory ring), without ftrace
    /// prefixes and without their sequence numbers ([`without_seq`]).
    pub fn lines(&self) -> Vec<String> {
        self.lines_with_seq()
            .iter()
            .map(|l| without_seq(l))
            .collect()
    }

    /// The project lines as written, `seq=` included.
    pub fn lines_with_seq(&self) -> Vec<String> {
        String::from_utf8(self.rec.dump())
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once("tracing_mark_write: ")
                    .map(|(_, b)| b.to_string())
            })
            .collect()
    }
}

/// A line without the recorder's ` seq=<hex>` (which every line carries
/// after its operation word, and which tests that compare whole lines
/// leave out).
pub fn without_seq(l: &str) -> String {
    match l.split_once(" seq=") {
        Some((head, rest)) => match rest.split_once(' ') {
            Some((_, tail)) => format!("{head} {tail}"),
            None => head.to_string(),
        },
        None => l.to_string(),
    }
}

/// The seed story's key: netns cookie 1, ifindex 5, queue 1.
pub const SK: SockKey = SockKey::new(1, 5, 1);

/// UMEM of 16384 frames of 2048 bytes (32 MiB), as large as the seed's addresses need.
pub fn seed_umem() -> UmemConfig {
    UmemConfig::aligned(16384, 2048)
}

/// One UMEM, one pool, one socket.
pub fn one_sock(
    rig: &Rig,
    umem: UmemConfig,
) -> (
    xskdbg_recorder::Umem,
    xskdbg_recorder::Pool,
    xskdbg_recorder::Sock,
) {
    let u = rig.rec.umem(umem).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s = p.socket(SockConfig::new(SK).label("ingress q:1")).unwrap();
    (u, p, s)
}

/// A statistics source the test moves by hand.
#[derive(Default)]
pub struct HandStats(pub Mutex<XdpStats>);

impl StatsSource for HandStats {
    fn read(&self) -> std::io::Result<XdpStats> {
        Ok(*self.0.lock().unwrap())
    }
}
