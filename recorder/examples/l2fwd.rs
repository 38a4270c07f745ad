//! l2fwd on xdpilone, recorded through the recorder's xdpilone wrappers:
//! every frame received goes back out of the same interface with its MAC
//! addresses swapped. The Rust twin of `examples/c/l2fwd`.
//!
//! ```text
//! cargo build -p xskdbg-recorder --example l2fwd --features xdpilone
//! ip netns exec NS target/debug/examples/l2fwd -i IFACE [-m skb|native] [-d SECS] [-b BUG]
//! ```
//!
//! `CheckedPool` (FILL, COMPLETION), `CheckedRx` and `CheckedTx` record each
//! batch as they move it, in the right order (produced entries before the
//! commit, consumed ones before the release), and `CheckedRx` poisons the
//! ring up front and every slot it consumed. The program's own free list is
//! recorded with `Umem::free`, so a frame it loses is told from one it
//! keeps. The socket, the UMEM and the XDP redirect program come from the
//! project's `xsknet` testbed (a real program would use xdpilone's
//! `Umem`/`Socket` and its own XDP program the same way).
//!
//! BUG plants a mistake once 200 frames went through: `fill-tx` (a frame
//! sent on TX is also put on FILL), `double-recycle` (a completed frame goes
//! back to the free list twice), `leak` (a completed frame is forgotten).
//! Lines go to `$XSKDBG_INSTANCE`'s trace_marker (what `xskdbg record`
//! sets), else the top-level buffer. Exit 0 after SECS, 1 on a setup error.

use std::time::{Duration, Instant};

use xskdbg_recorder::xdpilone::{CheckedPool, CheckedRx, CheckedTx};
use xskdbg_recorder::{
    Policy, PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, SockKey, UmemConfig,
    DEFAULT_POISON,
};
use xsknet::{SharedUmem, XdpDesc, XdpMode, XdpProgram};

const BATCH: usize = 64;
const BUG_AFTER: u64 = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    FillTx,
    DoubleRecycle,
    Leak,
}

struct Args {
    ifname: String,
    mode: XdpMode,
    secs: f64,
    bug: Bug,
}

fn usage() -> ! {
    eprintln!(
        "usage: l2fwd -i IFACE [-m skb|native] [-d SECONDS] [-b fill-tx|double-recycle|leak]"
    );
    std::process::exit(2);
}

fn args() -> Args {
    let mut a = Args {
        ifname: String::new(),
        mode: XdpMode::Generic,
        secs: 2.0,
        bug: Bug::None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "-i" => a.ifname = v,
            "-m" => {
                a.mode = match v.as_str() {
                    "skb" => XdpMode::Generic,
                    "native" => XdpMode::Native,
                    _ => usage(),
                }
            }
            "-d" => a.secs = v.parse().unwrap_or_else(|_| usage()),
            "-b" => {
                a.bug = match v.as_str() {
                    "fill-tx" => Bug::FillTx,
                    "double-recycle" => Bug::DoubleRecycle,
                    "leak" => Bug::Leak,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if a.ifname.is_empty() {
        usage();
    }
    a
}

fn main() {
    if let Err(e) = run(args()) {
        eprintln!("l2fwd: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let ucfg = xsknet::UmemConfig::default();
    let mut umem = SharedUmem::new(ucfg)?;
    let xdp = XdpProgram::attach(None, &args.ifname, args.mode)?;
    let mut sock = umem.socket(None, &args.ifname, 0)?;
    xdp.register(0, sock.fd())?;
    let area = std::sync::Arc::clone(sock.area());
    let fd = sock.fd_raw();
    let k = sock.key();

    // The recorder: one UMEM, its pool (FILL + COMPLETION of this queue),
    // the socket (RX + TX).
    let rec = Recorder::new(
        RecorderConfig::new(SinkConfig::TraceMarker { instance: None }).policy(Policy::Log),
    )?;
    let ru =
        rec.umem(UmemConfig::aligned(ucfg.frames, ucfg.frame_size).with_poison(DEFAULT_POISON))?;
    let key = SockKey::new(k.netns_cookie, k.ifindex, k.queue);
    let pool = ru.pool(PoolConfig::new(key))?;
    let rs = pool.socket(SockConfig::new(key).fd(fd).label(args.ifname.clone()))?;

    let mut fill = CheckedPool::new(&mut sock.fill, pool.clone());
    let mut comp = CheckedPool::new(&mut sock.comp, pool.clone());
    let mut rx =
        CheckedRx::with_ring(&mut sock.rx, rs.clone(), ucfg.rx_size, Some(DEFAULT_POISON))?;
    let mut tx = CheckedTx::new(&mut sock.tx, rs.clone());
    // Before the first FILL: every RX slot holds the poison, so a
    // descriptor read from outside the ring is told apart.
    rx.prepoison()?;

    // Every frame starts on the program's free list; then FILL.
    let mut free: Vec<u64> = umem.frame_addrs().collect();
    ru.free(&free);
    let refill = |free: &mut Vec<u64>, fill: &mut CheckedPool<_>| {
        // The top of the stack; FILL may take only part of it.
        let from = free.len() - free.len().min(BATCH);
        let n = fill.fill(&free[from..]);
        free.drain(from..from + n);
    };
    for _ in 0..ucfg.fill_size as usize / BATCH {
        refill(&mut free, &mut fill);
    }
    eprintln!("l2fwd: forwarding on {} queue 0", args.ifname);

    let (mut received, mut forwarded, mut planted) = (0u64, 0u64, false);
    let mut descs = [XdpDesc::default(); BATCH];
    let mut done = [0u64; BATCH];
    let mut pkt = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs_f64(args.secs) {
        // COMPLETION -> free list.
        let n = comp.complete(&mut done);
        let mut back: Vec<u64> = done[..n].iter().map(|&a| area.chunk_of(a)).collect();
        if n > 0 && !planted && forwarded >= BUG_AFTER {
            match args.bug {
                Bug::DoubleRecycle => {
                    let last = back[n - 1];
                    back.push(last);
                    planted = true;
                    eprintln!("l2fwd: planted double-recycle on frame {last:#x}");
                }
                Bug::Leak => {
                    let last = back.pop().unwrap_or_default();
                    planted = true;
                    eprintln!("l2fwd: planted leak on frame {last:#x}");
                }
                _ => {}
            }
        }
        if !back.is_empty() {
            ru.free(&back);
            free.extend_from_slice(&back);
        }

        // RX -> TX, MAC addresses swapped; what TX cannot take goes back to
        // the free list.
        let n = rx.receive(&mut descs);
        if n > 0 {
            received += n as u64;
            for d in &descs[..n] {
                if area.read_into(d.addr, d.len, &mut pkt) && pkt.len() >= 12 {
                    let (dst, src) = pkt.split_at_mut(6);
                    dst.swap_with_slice(&mut src[..6]);
                    area.write(d.addr, &pkt);
                }
            }
            let sent = tx.transmit(&descs[..n]);
            forwarded += sent as u64;
            if sent < n {
                let rest: Vec<u64> = descs[sent..n]
                    .iter()
                    .map(|d| area.chunk_of(d.addr))
                    .collect();
                ru.free(&rest);
                free.extend_from_slice(&rest);
            }
            // The kernel took FILL entries for what it received: room for
            // the planted bug, a frame just put on TX also given to FILL.
            if args.bug == Bug::FillTx && !planted && sent > 0 && forwarded >= BUG_AFTER {
                let a = area.chunk_of(descs[0].addr);
                if fill.fill(&[a]) == 1 {
                    planted = true;
                    eprintln!("l2fwd: planted fill-tx on frame {a:#x}");
                }
            }
            // Copy mode sends on a syscall.
            tx.wake();
        }
        // Free list -> FILL, after RX and the bug's chance.
        refill(&mut free, &mut fill);
        if n == 0 {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 10) };
        }
    }
    println!(
        "l2fwd: {received} frames received, {forwarded} forwarded, {} violation(s){}",
        rec.violations(),
        if rec.is_frozen() {
            ", trace frozen"
        } else {
            ""
        }
    );
    Ok(())
}
