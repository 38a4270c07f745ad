//! Cost per probed event of a backend (root; run with
//! `cargo run --release -p xskdbg-probes --example probe_cost [BACKEND] [FRAMES]
//! [ROUNDS] [MODES]`, default `tracepoint 20000 5 unprobed,printk,ring`, `idle`
//! on request (attached, every event filtered out); the
//! unprobed rounds always run, they are the baseline).
//!
//! A veth pair in two fresh namespaces, native XDP redirecting into one
//! copy-mode AF_XDP socket, and a paced sender in the same thread: the time
//! per frame is measured with no probes, with the probes printing
//! (`bpf_trace_printk`, formatted at event time) and with the probes writing
//! records into their ring buffers (drained into the trace by one thread per
//! CPU), in alternating rounds. The figures are medians of CPU time per
//! received frame, counted with perf events: the sending thread's
//! `task-clock` (the receive softirq runs on it, so it holds the kernel path
//! and the probes), and the same counter inherited by the drainer threads
//! (their formatting and `trace_marker` writes). Instructions and cycles are
//! counted too where the machine exposes a PMU (it says when it does not).
//!
//! With `PROBE_COST_BPF_STATS=1` the kernel also counts each BPF program's
//! runs and run time (`BPF_ENABLE_STATS`, on only while this runs): the
//! kernel side's cost per program, straight from the kernel, printed per
//! received frame next to the lines of each kind the trace got per frame.
//! The counting itself costs two clock reads per program run, so the
//! task-clock figures of such a run are not the ones to quote.

use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use perf_event_open_sys as perf;
use xskdbg_probes::{attach, Backend, Filters, Output, Request};
use xskdbg_tracefs::TraceFs;
use xsknet::packet::{build_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpDesc, XdpMode, XdpProgram};

/// One perf counter of the calling thread (and, with `inherit`, of the
/// threads it creates later).
struct Counter(OwnedFd);

impl Counter {
    fn open(kind: u32, config: u64, inherit: bool) -> std::io::Result<Counter> {
        let mut a = perf::bindings::perf_event_attr {
            size: std::mem::size_of::<perf::bindings::perf_event_attr>() as u32,
            type_: kind,
            config,
            ..Default::default()
        };
        a.set_exclude_hv(1);
        a.set_inherit(u64::from(inherit));
        // SAFETY: a valid attr; pid 0 = this thread, any CPU, no group.
        let fd = unsafe {
            perf::perf_event_open(&mut a, 0, -1, -1, perf::bindings::PERF_FLAG_FD_CLOEXEC as _)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new fd we own.
        Ok(Counter(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn read(&self) -> u64 {
        let mut v = 0u64;
        // SAFETY: reading 8 bytes into a u64 from our perf fd.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                (&raw mut v).cast(),
                8,
            )
        };
        if n == 8 {
            v
        } else {
            0
        }
    }
}

/// The counters of one round: task-clock of this thread, task-clock with
/// the threads it starts (the drainers), and instructions/cycles if any.
struct Counters {
    thread: Counter,
    all: Counter,
    instructions: Option<Counter>,
    cycles: Option<Counter>,
}

impl Counters {
    fn open() -> Counters {
        let sw = perf::bindings::PERF_TYPE_SOFTWARE;
        let hw = perf::bindings::PERF_TYPE_HARDWARE;
        let task = u64::from(perf::bindings::PERF_COUNT_SW_TASK_CLOCK);
        Counters {
            thread: Counter::open(sw, task, false).expect("perf task-clock"),
            all: Counter::open(sw, task, true).expect("perf task-clock (inherited)"),
            instructions: Counter::open(
                hw,
                u64::from(perf::bindings::PERF_COUNT_HW_INSTRUCTIONS),
                true,
            )
            .ok(),
            cycles: Counter::open(
                hw,
                u64::from(perf::bindings::PERF_COUNT_HW_CPU_CYCLES),
                true,
            )
            .ok(),
        }
    }
}

/// What one round cost per received frame.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall: f64,
    thread: f64,
    all: f64,
    instructions: f64,
    cycles: f64,
}

const ROUNDS: usize = 5;

/// Runs and run time of every loaded BPF program, by id (name, runs, ns).
fn bpf_stats() -> std::collections::HashMap<u32, (String, u64, u64)> {
    libbpf_rs::query::ProgInfoIter::default()
        .map(|p| {
            (
                p.id,
                (
                    p.name.to_string_lossy().into_owned(),
                    p.run_cnt,
                    p.run_time_ns,
                ),
            )
        })
        .collect()
}

/// What each BPF program cost during a round, per received frame:
/// (name, runs per frame, ns per run, ns per frame).
type ProgCost = Vec<(String, f64, f64, f64)>;

/// The id of a loaded program.
fn prog_id(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info is a valid out-buffer of `len` bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &mut info,
            &mut len,
        )
    };
    assert_eq!(rc, 0, "BPF_OBJ_GET_INFO_BY_FD");
    info.id
}

/// The programs not in `known` and program `xdp` (other sessions' programs
/// on this machine are left out), counted since `before`.
fn prog_cost(
    known: &std::collections::HashMap<u32, (String, u64, u64)>,
    before: &std::collections::HashMap<u32, (String, u64, u64)>,
    xdp: u32,
    frames: u64,
) -> ProgCost {
    let mut v: ProgCost = bpf_stats()
        .into_iter()
        .filter(|(id, _)| *id == xdp || !known.contains_key(id))
        .filter_map(|(id, (name, cnt, ns))| {
            let (c0, n0) = before.get(&id).map_or((0, 0), |b| (b.1, b.2));
            let (cnt, ns) = (cnt - c0, ns - n0);
            (cnt > 0).then(|| {
                (
                    name,
                    cnt as f64 / frames as f64,
                    ns as f64 / cnt as f64,
                    ns as f64 / frames as f64,
                )
            })
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn main() {
    // probe_cost [BACKEND] [FRAMES]
    let mut argv = std::env::args().skip(1);
    let backend: Backend = argv
        .next()
        .unwrap_or_else(|| "tracepoint".into())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("probe_cost: {e}");
            std::process::exit(2)
        });
    let frames: u64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let rounds: usize = argv.next().and_then(|s| s.parse().ok()).unwrap_or(ROUNDS);
    let pick: Option<String> = argv.next();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("probe_cost: needs root (netns, veth, XDP, BPF)");
        std::process::exit(2);
    }
    let want_stats = std::env::var_os("PROBE_COST_BPF_STATS").is_some_and(|v| v == "1");
    // The kernel counts while this fd is open and stops when it closes.
    let _stats_on = want_stats.then(|| {
        // SAFETY: a plain syscall wrapper; it returns an fd we own or -1.
        let fd = unsafe {
            libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
        };
        assert!(
            fd >= 0,
            "BPF_ENABLE_STATS: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new fd we own.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    let mut prog_costs: Vec<(&str, ProgCost)> = Vec::new();
    let mut line_counts: Vec<(&str, Vec<(String, f64)>)> = Vec::new();
    let tfs = TraceFs::find().expect("tracefs");
    let inst = tfs
        .create_instance(&format!("xskdbg-bench-{}", std::process::id()))
        .expect("instance");
    let buf = inst.buffer();
    buf.set_buffer_size_kb(32768).expect("buffer size");
    let ns_x = NetNs::new("bx").unwrap();
    let ns_p = NetNs::new("bp").unwrap();
    let veth = VethBuilder::new("bxsk0", "bgen0")
        .queues(1)
        .addrs(Ipv4Addr::new(10, 79, 0, 1), Ipv4Addr::new(10, 79, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let xdp = XdpProgram::attach(Some(&ns_x), "bxsk0", XdpMode::Native).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut sock = umem.socket(Some(&ns_x), "bxsk0", 0).unwrap();
    xdp.register(0, sock.fd()).unwrap();
    let mut free: Vec<u64> = umem.frame_addrs().collect();
    sock.fill_from(&mut free);
    let spec = FrameSpec {
        src_mac: veth.b.mac,
        dst_mac: veth.a.mac,
        src_ip: Ipv4Addr::new(10, 79, 0, 2),
        dst_ip: Ipv4Addr::new(10, 79, 0, 1),
        src_port: 4000,
        dst_port: 9000,
        l4: L4::Udp,
        flow: 0,
    };
    let gen = Generator::new(Some(&ns_p), "bgen0").unwrap();
    let area = std::sync::Arc::clone(sock.area());

    let hw_note = match Counter::open(
        perf::bindings::PERF_TYPE_HARDWARE,
        u64::from(perf::bindings::PERF_COUNT_HW_INSTRUCTIONS),
        false,
    ) {
        Ok(_) => "instructions and cycles counted (PMU present)".to_string(),
        Err(e) => format!("no hardware counters ({e}): task-clock only"),
    };
    // The receive path runs in softirq on this thread (the AF_PACKET send
    // wakes veth's NAPI locally): its task-clock holds the kernel path.
    let xdp_id = prog_id(xdp.prog_fd());
    let mut one_round = |name: &'static str, mode: Option<Output>| -> Cost {
        let c = Counters::open();
        // Programs loaded before this round's are not the probes'.
        let known = if want_stats {
            bpf_stats()
        } else {
            Default::default()
        };
        let probes = mode.map(|output| {
            attach(&Request {
                backend,
                filters: Filters {
                    // `idle`: a namespace no socket is in, so every
                    // program runs and returns at its filter.
                    netns_cookie: Some(if name == "idle" {
                        ns_x.cookie() ^ 0x5a5a
                    } else {
                        ns_x.cookie()
                    }),
                    ..Filters::default()
                },
                buffer: buf.clone(),
                group: xskdbg_probes::kprobe_events::GROUP.into(),
                stacks: false,
                output,
            })
            .expect("attach")
        });
        let stats0 = if want_stats {
            bpf_stats()
        } else {
            Default::default()
        };
        let mut frame = Vec::new();
        let mut got: Vec<XdpDesc> = Vec::new();
        let (mut sent, mut recv) = (0u64, 0u64);
        let (t0, a0) = (c.thread.read(), c.all.read());
        let (i0, y0) = (
            c.instructions.as_ref().map_or(0, Counter::read),
            c.cycles.as_ref().map_or(0, Counter::read),
        );
        let start = Instant::now();
        while recv < frames && start.elapsed() < Duration::from_secs(60) {
            while sent < frames && sent - recv < 64 {
                build_frame(&spec, sent, 64, &mut frame).unwrap();
                if gen.send_frame(&frame).unwrap() {
                    sent += 1;
                }
            }
            got.clear();
            if sock.receive(256, &mut got) == 0 {
                continue;
            }
            recv += got.len() as u64;
            for d in &got {
                free.push(area.chunk_of(d.addr));
            }
            sock.fill_from(&mut free);
        }
        let wall = start.elapsed().as_nanos() as f64 / frames as f64;
        let thread = (c.thread.read() - t0) as f64 / frames as f64;
        if want_stats {
            prog_costs.push((name, prog_cost(&known, &stats0, xdp_id, frames)));
        }
        // The drainers' last drain is part of the cost; unloading the
        // programs afterwards is not.
        let mut probes = probes;
        if let Some(p) = probes.as_mut() {
            p.finish_drain();
        }
        let all = (c.all.read() - a0) as f64 / frames as f64;
        let per = |c: &Option<Counter>, v0: u64| {
            c.as_ref()
                .map_or(0.0, |c| (c.read() - v0) as f64 / frames as f64)
        };
        let cost = Cost {
            wall,
            thread,
            all,
            instructions: per(&c.instructions, i0),
            cycles: per(&c.cycles, y0),
        };
        drop(probes);
        if mode.is_some() && name != "idle" {
            let t = buf.read_trace().unwrap_or_default();
            // bpf_trace_printk lines of other sessions land here too: count
            // this namespace's receives only.
            let sk = format!(" sk={:x}:", ns_x.cookie());
            let krx = t
                .split(|&b| b == b'\n')
                .filter(|l| {
                    l.windows(13).any(|w| w == b"xskdbg:1 krx ")
                        && l.windows(sk.len()).any(|w| w == sk.as_bytes())
                })
                .count() as u64;
            assert_eq!(krx, frames, "one krx line per frame");
            if want_stats {
                // Lines of each kernel kind per frame (any sk: kpoll has none).
                let mut n: std::collections::BTreeMap<String, u64> = Default::default();
                for l in t.split(|&b| b == b'\n') {
                    let Some(at) = l.windows(10).position(|w| w == b"xskdbg:1 k") else {
                        continue;
                    };
                    let op = &l[at + 9..];
                    let end = op.iter().position(|&b| b == b' ').unwrap_or(op.len());
                    *n.entry(String::from_utf8_lossy(&op[..end]).into_owned())
                        .or_default() += 1;
                }
                line_counts.push((
                    name,
                    n.into_iter()
                        .map(|(k, v)| (k, v as f64 / frames as f64))
                        .collect(),
                ));
            }
        }
        buf.clear().unwrap();
        assert_eq!(recv, frames, "every frame received");
        cost
    };
    let all: [(&str, Option<Output>); 4] = [
        ("unprobed", None),
        ("printk", Some(Output::Printk)),
        ("ring", Some(Output::Ring)),
        // Attached, but the filter turns every event away: what being
        // attached costs before any record is made (not run by default).
        ("idle", Some(Output::Ring)),
    ];
    // A fourth argument picks modes (`unprobed,ring`: to profile one).
    let modes: Vec<(&str, Option<Output>)> = match &pick {
        Some(p) => all
            .iter()
            .filter(|(n, _)| *n == "unprobed" || p.split(',').any(|x| x == *n))
            .copied()
            .collect(),
        None => all[..3].to_vec(),
    };
    let mut costs: Vec<Vec<Cost>> = vec![Vec::new(); modes.len()];
    one_round("warm-up", None);
    for _ in 0..rounds {
        for (i, (name, m)) in modes.iter().enumerate() {
            costs[i].push(one_round(name, *m));
        }
    }
    let med = |v: &[Cost], f: fn(&Cost) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    println!(
        "{backend} backend, {frames} frames x {rounds} rounds, kernel {}; {hw_note}:",
        xskdbg_probes::sys::kernel_release()
    );
    let base = med(&costs[0], |c| c.thread);
    let base_all = med(&costs[0], |c| c.all);
    println!("  mode      thread CPU/frame  +drainers CPU/frame  capture cost/frame  wall/frame  instr/frame  cycles/frame");
    for (i, (name, _)) in modes.iter().enumerate() {
        let v = &costs[i];
        let all = med(v, |c| c.all);
        println!(
            "  {name:<9} {:>13.0} ns  {:>16.0} ns  {:>15.0} ns  {:>7.0} ns  {:>11.0}  {:>12.0}",
            med(v, |c| c.thread),
            all,
            all - base_all,
            med(v, |c| c.wall),
            med(v, |c| c.instructions),
            med(v, |c| c.cycles),
        );
    }
    println!("  (capture cost = median task-clock of the receiving thread and the drainers, minus unprobed; unprobed thread median {base:.0} ns)");
    if want_stats {
        println!("BPF programs (BPF_ENABLE_STATS; medians over the rounds of a mode):");
        println!("  mode      program          runs/frame  ns/run  ns/frame");
        for (name, _) in modes.iter().skip(1) {
            let rows: Vec<&ProgCost> = prog_costs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, c)| c)
                .collect();
            let Some(first) = rows.first() else { continue };
            for (prog, ..) in first.iter() {
                let col = |f: fn(&(String, f64, f64, f64)) -> f64| {
                    let mut x: Vec<f64> = rows
                        .iter()
                        .filter_map(|r| r.iter().find(|p| &p.0 == prog).map(f))
                        .collect();
                    x.sort_by(|a, b| a.total_cmp(b));
                    x[x.len() / 2]
                };
                println!(
                    "  {name:<9} {prog:<16} {:>10.2}  {:>6.0}  {:>8.0}",
                    col(|p| p.1),
                    col(|p| p.2),
                    col(|p| p.3)
                );
            }
            if let Some((_, lines)) = line_counts.iter().find(|(n, _)| n == name) {
                let l: Vec<String> = lines.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
                println!("  {name:<9} kernel lines per frame: {}", l.join(", "));
            }
        }
    }
}
