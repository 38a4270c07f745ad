//! `xskdbg-vm`: run commands as root in a qemu guest from scripts.
//!
//! ```text
//! xskdbg-vm run [--kernel debian|debian:NN|debian:6.12[.NN]|PATH] [--vcpus N] [--append '...']
//!               [--bin PATH[:NAME]]... [--file HOST[:GUEST]]... [--cmd 'SHELL']... [-- CMD ARGS...]
//! xskdbg-vm kernel [--kernel debian|debian:NN|debian:6.12[.NN]]
//! ```
//! The commands' stdout goes to stdout, their stderr and the runner's summary to
//! stderr. Exit: 0 every command exited 0, 1 a command failed or timed out, 2 the VM
//! could not run (usage, missing package, boot failure, panic, timeout).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use xskdbg_vmtest::initramfs::shell_quote;
use xskdbg_vmtest::{kernel, Accel, Binary, FileMapping, KernelSource, VmOutcome, VmSpec};

/// Run commands as root inside a qemu guest and bring back their output and files.
#[derive(Parser)]
#[command(name = "xskdbg-vm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot a guest, run the commands in order, save their results.
    Run(Box<RunArgs>),
    /// Fetch (once) and print the kernel a run would boot.
    Kernel {
        /// `debian` (newest 6.1 cloud kernel apt offers), `debian:NN` (its ABI number), `debian:6.12` (newest 6.12 cloud kernel), `debian:6.12.NN`, or a bzImage path.
        #[arg(long, default_value = "debian")]
        kernel: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// `debian` (newest 6.1 cloud kernel apt offers), `debian:NN` (its ABI number), `debian:6.12` (newest 6.12 cloud kernel), `debian:6.12.NN`, or a bzImage path.
    #[arg(long, default_value = "debian")]
    kernel: String,
    /// The `/lib/modules/VER` directory (with modules.dep) of a --kernel PATH.
    #[arg(long, value_name = "DIR")]
    modules_dir: Option<PathBuf>,
    /// tcg (default; works here), kvm, or auto (kvm with a short boot timeout, then tcg).
    #[arg(long, default_value = "tcg")]
    accel: String,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 2)]
    vcpus: u32,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// Extra kernel command line, e.g. 'veth.race_window_us=50' (module parameters too).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    append: String,
    /// Limit of the whole run in seconds; qemu is killed after it.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Limit of each command in seconds (default: --timeout).
    #[arg(long)]
    cmd_timeout: Option<u64>,
    /// Limit until the guest's init starts, in seconds (default 120 for tcg, 20 for kvm).
    #[arg(long)]
    boot_timeout: Option<u64>,
    /// A binary for /opt/xskdbg/bin (on PATH), with its shared libraries; PATH:NAME renames it.
    #[arg(long = "bin", value_name = "PATH[:NAME]")]
    bins: Vec<String>,
    /// A file or directory to copy into the guest (default: same absolute path).
    #[arg(long = "file", value_name = "HOST[:GUEST]")]
    files: Vec<String>,
    /// A kernel module to load besides virtio and veth (dependencies resolved).
    #[arg(long = "module", value_name = "NAME")]
    modules: Vec<String>,
    /// Environment for the commands (CI is passed through from the host by default).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A shell command line to run (repeatable; run in order before the trailing command).
    #[arg(long = "cmd", value_name = "SHELL")]
    cmds: Vec<String>,
    /// Host directory for console.log and guest/ (the commands' results and $XSKDBG_OUT).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Size of the raw result disk in MiB (sparse on the host).
    #[arg(long, default_value_t = 1024)]
    result_disk_mb: u64,
    /// Gzip the initramfs (default: uncompressed, which boots faster under TCG).
    #[arg(long)]
    gzip: bool,
    /// Copy the guest console to stderr as it arrives.
    #[arg(long, short)]
    verbose: bool,
    /// A command and its arguments, run last (quoted for the guest shell).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    xskdbg_cli::main(|cli: Cli| match cli.command {
        Cmd::Run(args) => run(*args),
        Cmd::Kernel { kernel } => show_kernel(&kernel).map(|()| ExitCode::SUCCESS),
    })
}

fn show_kernel(spec: &str) -> anyhow::Result<()> {
    let source = KernelSource::parse(spec).map_err(anyhow::Error::msg)?;
    let k = kernel::prepare(&source).context("cannot prepare the kernel")?;
    let mut text = format!("kernel: {}\nimage: {}\n", k.description, k.image.display());
    if let Some(r) = &k.release {
        text.push_str(&format!("release: {r}\n"));
    }
    if let Some(d) = &k.modules_dir {
        text.push_str(&format!("modules: {}\n", d.display()));
    }
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut kernel = KernelSource::parse(&args.kernel).map_err(anyhow::Error::msg)?;
    if let Some(dir) = args.modules_dir {
        match &mut kernel {
            KernelSource::Path { modules_dir, .. } => *modules_dir = Some(dir),
            KernelSource::Debian { .. } | KernelSource::Debian612 { .. } => {
                bail!("--modules-dir goes with --kernel PATH; Debian's kernel brings its own")
            }
        }
    }
    let out = match args.out {
        Some(o) => o,
        None => std::env::temp_dir().join(format!("xskdbg-vm.{}", std::process::id())),
    };
    let mut spec = VmSpec::new(out);
    spec.kernel = kernel;
    spec.accel = Accel::parse(&args.accel).map_err(anyhow::Error::msg)?;
    spec.vcpus = args.vcpus;
    spec.memory_mb = args.memory;
    spec.append = args.append;
    spec.timeout = Duration::from_secs(args.timeout);
    spec.command_timeout = args.cmd_timeout.map(Duration::from_secs);
    spec.boot_timeout = args.boot_timeout.map(Duration::from_secs);
    spec.binaries = args.bins.iter().map(|b| Binary::parse(b)).collect();
    spec.files = args
        .files
        .iter()
        .map(|f| FileMapping::parse(f))
        .collect::<Result<_, _>>()?;
    spec.modules = args.modules;
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env {kv}: expected KEY=VALUE");
        };
        spec.env.push((k.to_string(), v.to_string()));
    }
    spec.commands = args.cmds.into_iter().map(Into::into).collect();
    if !args.command.is_empty() {
        let line: Vec<String> = args.command.iter().map(|a| shell_quote(a)).collect();
        spec.commands.push(line.join(" ").into());
    }
    if spec.commands.is_empty() {
        bail!("nothing to run: give --cmd 'SHELL' or `-- CMD ARGS...`");
    }
    spec.result_disk_mb = args.result_disk_mb;
    spec.echo_console = args.verbose;
    spec.gzip_initramfs = args.gzip;

    match xskdbg_vmtest::run(&spec) {
        Ok(outcome) => {
            print_outcome(&outcome);
            Ok(if outcome.all_succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            if let Some(partial) = e.partial() {
                print_outcome(partial);
            }
            Err(e).context("the VM run failed")
        }
    }
}

fn print_outcome(o: &VmOutcome) {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for c in &o.commands {
        let _ = stdout.write_all(&c.stdout);
        let _ = stdout.flush();
        let _ = stderr.write_all(&c.stderr);
        let status = match (c.exit_code, c.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(code), false) => format!("exit {code}"),
            (None, false) => "did not finish".to_string(),
        };
        let took = c
            .elapsed
            .map(|d| format!(" in {:.2} s", d.as_secs_f64()))
            .unwrap_or_default();
        let _ = writeln!(
            stderr,
            "xskdbg-vm: [{:03}] {status}{took}: {}",
            c.index, c.command
        );
    }
    for w in &o.kernel_warnings {
        let _ = writeln!(stderr, "xskdbg-vm: kernel warning: {w}");
    }
    for m in &o.module_failures {
        let _ = writeln!(stderr, "xskdbg-vm: module failed to load: {m}");
    }
    let boot = o
        .boot_time
        .map(|d| format!("{:.1} s", d.as_secs_f64()))
        .unwrap_or_else(|| "?".into());
    let _ = writeln!(
        stderr,
        "xskdbg-vm: {} ({}), {:?}, boot {boot}, total {:.1} s; results in {} (console.log, guest/out = $XSKDBG_OUT)",
        o.kernel,
        o.kernel_release.as_deref().unwrap_or("?"),
        o.accel,
        o.wall_time.as_secs_f64(),
        o.out_dir.display()
    );
}
