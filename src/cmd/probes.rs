//! `xskdbg probes list|attach|detach|status`: the kernel probes on their own.
//!
//! - `list`: the backends, whether this kernel allows each, and why not.
//! - `attach`: attach into an ftrace instance and stay attached until Ctrl-C
//!   (BPF links live as long as this process; nothing survives it).
//! - `detach --all`: remove leftovers of runs that were killed (SIGKILL):
//!   `xskdbg*` kprobe events and `xskdbg-*` ftrace instances.
//! - `status`: what the kernel offers and which leftovers exist.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xskdbg_probes::{attach, detach_all, leftovers, sys, Backend, Filters, Request};
use xskdbg_tracefs::TraceFs;

/// Arguments of `xskdbg probes`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Sub,
}

/// `xskdbg probes` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// List the backends and whether this kernel allows each.
    List,
    /// Attach probes into an ftrace instance until Ctrl-C.
    Attach {
        /// Probe backend: auto, tracepoint, fentry, kprobe or tracefs.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// ftrace instance (the `xskdbg-` prefix is added when missing).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Socket filters.
        #[command(flatten)]
        filters: FilterArgs,
    },
    /// Remove leftovers of killed runs (kprobe events, instances).
    Detach {
        /// Remove every `xskdbg*` kprobe event and `xskdbg-*` instance.
        #[arg(long)]
        all: bool,
    },
    /// What this kernel offers and which leftovers exist.
    Status,
}

/// Socket filters shared by `probes attach` and `record`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only AF_XDP sockets held open by this process.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Only devices in the network namespace with this cookie (SO_NETNS_COOKIE).
    #[arg(long, value_name = "COOKIE")]
    pub netns_cookie: Option<u64>,
    /// Only this device (ifindex in its namespace).
    #[arg(long, value_name = "IFINDEX")]
    pub ifindex: Option<u32>,
    /// Only this queue id.
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<u32>,
    /// Record kernel stacks at receive and flush (BPF backends), symbolized
    /// into `kstackdef` lines when recording ends.
    #[arg(long)]
    pub stacks: bool,
    /// How the BPF backends write their events: `ring` (binary records in
    /// per-CPU ring buffers, written into the trace by one drainer thread
    /// per CPU; the cheap default) or `printk` (one bpf_trace_printk line
    /// per event, formatted at event time).
    #[arg(long, default_value = "ring", value_name = "ring|printk", value_parser = parse_output)]
    pub probe_output: xskdbg_probes::Output,
}

/// `--probe-output`.
pub fn parse_output(s: &str) -> std::result::Result<xskdbg_probes::Output, String> {
    s.parse()
        .map_err(|e: xskdbg_probes::ProbeError| e.to_string())
}

/// Checks the filter flags and turns them into [`Filters`].
pub fn filters_of(a: &FilterArgs) -> Result<Filters> {
    if let Some(p) = a.pid {
        if !std::path::Path::new(&format!("/proc/{p}")).exists() {
            bail!("--pid {p}: no such process");
        }
    }
    if a.ifindex == Some(0) {
        bail!("--ifindex 0: interface indexes start at 1 (see `ip link`)");
    }
    Ok(Filters {
        pid: a.pid,
        netns_cookie: a.netns_cookie,
        ifindex: a.ifindex,
        queue: a.queue,
    })
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM/SIGHUP handlers that only set a flag, so the main loop
/// stops and every guard (links, kprobe events, instance, tracefs settings)
/// is dropped normally. The previous handlers come back on drop.
pub struct Signals {
    old: Vec<(libc::c_int, libc::sighandler_t)>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Signals> {
        STOP.store(false, Ordering::SeqCst);
        let mut old = Vec::new();
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only stores into an atomic (async-signal-safe).
            let prev = unsafe { libc::signal(s, on_signal as *const () as libc::sighandler_t) };
            if prev == libc::SIG_ERR {
                bail!("cannot install a handler for signal {s}");
            }
            old.push((s, prev));
        }
        Ok(Signals { old })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (s, h) in self.old.drain(..) {
            // SAFETY: restoring the handler that was there before.
            unsafe { libc::signal(s, h) };
        }
    }
}

/// Whether a stop signal arrived since [`Signals::install`].
pub fn stop_requested(_: &Signals) -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Run `xskdbg probes`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Sub::List => list(),
        Sub::Status => status(),
        Sub::Detach { all } => {
            if !all {
                bail!(
                    "probes stay attached only while `xskdbg probes attach` or `xskdbg record` runs: \
                     stop it with Ctrl-C. `xskdbg probes detach --all` removes leftovers of killed runs"
                );
            }
            let removed = detach_all()?;
            if removed.is_empty() {
                println!("nothing to remove");
            }
            for r in removed {
                println!("removed {r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Sub::Attach {
            backend,
            instance,
            filters,
        } => attach_until_signal(&backend, instance.as_deref(), &filters),
    }
}

fn list() -> Result<ExitCode> {
    let tfs = TraceFs::find()?;
    let caps = sys::caps(&tfs);
    println!("kernel: {}", caps.summary());
    for b in Backend::AUTO_ORDER {
        let p = b.proves();
        let state = match caps.precheck(b) {
            None => "worth trying".to_string(),
            Some(why) => format!("unavailable: {why}"),
        };
        println!(
            "{:<10} flush={} tx={} comp={}  {state}",
            b.name(),
            p.flush.name(),
            u8::from(p.tx),
            u8::from(p.comp)
        );
    }
    println!("auto tries fentry, kprobe, tracepoint, tracefs in that order; loading may still be refused (EPERM)");
    Ok(ExitCode::SUCCESS)
}

fn status() -> Result<ExitCode> {
    let tfs = TraceFs::find()?;
    let caps = sys::caps(&tfs);
    println!("tracefs: {}", tfs.root().display());
    println!("kernel: {}", caps.summary());
    let left = leftovers()?;
    if left.is_empty() {
        println!("leftovers: none");
    } else {
        for l in &left {
            println!("leftover: {l}");
        }
        println!("remove them with `xskdbg probes detach --all`");
    }
    Ok(ExitCode::SUCCESS)
}

fn attach_until_signal(backend: &str, instance: Option<&str>, fa: &FilterArgs) -> Result<ExitCode> {
    let backend: Backend = backend.parse()?;
    let filters = filters_of(fa)?;
    let tfs = TraceFs::find()?;
    let name = super::record::instance_name(instance, std::process::id());
    let inst = tfs
        .create_instance(&name)
        .with_context(|| format!("creating ftrace instance {name}"))?;
    let buf = inst.buffer();
    let signals = Signals::install()?;
    let probes = attach(&Request {
        backend,
        filters,
        buffer: buf.clone(),
        group: xskdbg_probes::kprobe_events::GROUP.into(),
        stacks: fa.stacks,
        output: fa.probe_output,
    })?;
    buf.open_marker()?.write(probes.header_line().as_bytes())?;
    println!("{}", probes.header_line());
    for n in probes.notes() {
        println!("note: {n}");
    }
    println!(
        "attached {} probes; events go to {}; Ctrl-C detaches",
        probes.probe_count(),
        buf.path("trace").display()
    );
    while !stop_requested(&signals) {
        std::thread::sleep(Duration::from_millis(100));
        probes.refresh_pid_filter()?;
    }
    for l in probes.stack_lines() {
        buf.open_marker()?.write(l.as_bytes())?;
    }
    drop(probes);
    // Keep the instance so its trace can still be read.
    let kept = inst.keep();
    println!(
        "detached; the events stay in {} until `xskdbg probes detach --all`",
        kept.path("trace").display()
    );
    Ok(ExitCode::SUCCESS)
}
