//! Boots Debian's 6.1 cloud kernel under qemu (TCG) and checks what the guest offers and
//! what comes back. Needs qemu-system-x86, busybox-static, iproute2 and apt access to
//! Debian's kernel package (scripts/setup.sh); outside CI a missing piece skips with
//! the reason, in CI it fails (`xskdbg-testenv`). Each boot is bounded (TCG boots in
//! ~10 s here).

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use xskdbg_vmtest::{kernel, run, Binary, GuestCommand, KernelSource, VmError, VmSpec};

/// Two TCG guests at once on a 2-core machine only slow each other down.
static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

use xskdbg_testenv::Cap;

/// Whether a guest can boot here: qemu, and Debian's kernel (fetched once).
/// Otherwise the test skips, or fails in CI.
fn require_vm(test: &str) -> bool {
    xskdbg_testenv::require_and(test, &[Cap::Guest], || {
        kernel::prepare(&KernelSource::Debian { abi: None })
            .map(|_| ())
            .map_err(|e| format!("Debian kernel unavailable: {e}"))
    })
}

fn spec(dir: &std::path::Path) -> VmSpec {
    let mut spec = VmSpec::new(dir.join("out"));
    spec.timeout = Duration::from_secs(170);
    spec.command_timeout = Some(Duration::from_secs(60));
    spec
}

#[test]
fn debian_guest_runs_commands_and_returns_files() {
    if !require_vm("debian_guest_runs_commands_and_returns_files") {
        return;
    }
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    // A Rust binary from this workspace with its shared libraries: what the probes
    // tests will do with their test binaries.
    spec.binaries.push(Binary {
        host: env!("CARGO_BIN_EXE_xskdbg-vm").into(),
        name: Some("vm-self".into()),
    });
    let cmds = [
        "uname -r",
        "ls /sys/kernel/tracing/kprobe_events /sys/kernel/btf/vmlinux && grep -c ' /sys/fs/bpf bpf ' /proc/mounts",
        "cd /sys/kernel/tracing && echo 'p:xskdbg_vmtest_probe __xsk_rcv_zc' >> kprobe_events \
         && echo 'p:xskdbg_vmtest_open do_sys_openat2' >> kprobe_events \
         && echo 1 > events/kprobes/enable && cat /etc/hosts > /dev/null \
         && echo 0 > events/kprobes/enable && cat kprobe_events kprobe_profile",
        "/usr/sbin/ip link add vmt0 type veth peer name vmt1 && /usr/sbin/ip -o link show vmt0 && /usr/sbin/tc -V",
        "vm-self --version",
        "mkdir -p $XSKDBG_OUT/sub && printf 'trace line\\n' > $XSKDBG_OUT/sub/trace.txt && head -c 3000000 /dev/urandom > $XSKDBG_OUT/big.bin",
        "echo to-stderr >&2; exit 7",
        "cat /nonexistent",
    ];
    spec.commands = cmds.iter().map(|c| GuestCommand::from(*c)).collect();
    spec.commands.push(GuestCommand {
        line: "sleep 30".into(),
        timeout: Some(Duration::from_secs(2)),
    });
    spec.commands
        .push("echo still-running-after-timeout".into());
    // MOD.PARAM=V on the command line must reach a module the guest insmods.
    spec.append = "virtio_blk.queue_depth=77".into();
    spec.commands
        .push("cat /sys/module/virtio_blk/parameters/queue_depth".into());

    let out = match run(&spec) {
        Ok(out) => out,
        Err(e) => panic!("VM run failed: {e}"),
    };
    let c = &out.commands;
    assert_eq!(c.len(), spec.commands.len(), "{c:#?}");
    assert!(c[0].success());
    assert!(
        c[0].stdout_str().starts_with("6.1.0-"),
        "uname -r: {}",
        c[0].stdout_str()
    );
    assert_eq!(
        out.kernel_release.as_deref(),
        Some(c[0].stdout_str().trim())
    );
    assert!(
        c[1].success(),
        "tracefs/btf/bpffs: {}{}",
        c[1].stdout_str(),
        c[1].stderr_str()
    );
    assert!(c[1]
        .stdout_str()
        .contains("/sys/kernel/tracing/kprobe_events"));
    assert!(
        c[1].stdout_str().trim_end().ends_with('1'),
        "bpffs not mounted"
    );
    assert!(c[2].success(), "kprobe refused: {}", c[2].stderr_str());
    assert!(c[2]
        .stdout_str()
        .contains("xskdbg_vmtest_probe __xsk_rcv_zc"));
    assert!(c[3].success(), "veth: {}", c[3].stderr_str());
    assert!(c[3].stdout_str().contains("vmt0@vmt1"));
    assert!(
        c[3].stdout_str().contains("tc utility"),
        "{}",
        c[3].stdout_str()
    );
    assert!(c[4].success(), "{}", c[4].stderr_str());
    assert!(c[4].stdout_str().contains("xskdbg-vm"));
    assert!(c[5].success(), "{}", c[5].stderr_str());
    assert_eq!(
        fs::read_to_string(out.files_dir.join("sub/trace.txt")).unwrap(),
        "trace line\n"
    );
    assert_eq!(
        fs::metadata(out.files_dir.join("big.bin")).unwrap().len(),
        3_000_000
    );
    assert_eq!(c[6].exit_code, Some(7));
    assert_eq!(c[6].stderr_str(), "to-stderr\n");
    assert!(!c[7].success());
    assert!(c[7].stderr_str().contains("nonexistent"));
    assert!(c[8].timed_out, "{:?}", c[8]);
    assert!(!c[8].success());
    assert_eq!(c[9].stdout_str(), "still-running-after-timeout\n");
    assert_eq!(c[10].stdout_str(), "77\n");
    assert!(out.module_failures.is_empty(), "{:?}", out.module_failures);
    let console = fs::read_to_string(&out.console_log).unwrap();
    assert!(console.contains("xskdbg-vm: done"));
    eprintln!(
        "boot (host clock) {:?}, guest uptime at init {:?}, run {:?}",
        out.boot_time, out.guest_boot_uptime, out.wall_time
    );
}

#[test]
fn kernel_panic_is_reported_with_the_results_saved_before_it_and_path_kernels_boot() {
    if !require_vm(
        "kernel_panic_is_reported_with_the_results_saved_before_it_and_path_kernels_boot",
    ) {
        return;
    }
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    // Boot the Debian image as a plain bzImage path with its modules directory, the
    // way a self-built kernel with modules is given.
    let debian = kernel::prepare(&KernelSource::Debian { abi: None }).unwrap();
    spec.kernel = KernelSource::Path {
        image: debian.image.clone(),
        modules_dir: debian.modules_dir.clone(),
    };
    spec.commands = vec![
        "echo before-panic > $XSKDBG_OUT/before.txt; echo ok".into(),
        "echo c > /proc/sysrq-trigger".into(),
        "echo never".into(),
    ];
    let err = run(&spec).expect_err("a crashed guest must be an error");
    let VmError::KernelPanic { ref line, .. } = err else {
        panic!("expected a kernel panic, got: {err}");
    };
    assert!(line.contains("Kernel panic"), "{line}");
    let partial = err.partial().expect("results saved before the panic");
    assert_eq!(partial.commands[0].stdout_str(), "ok\n");
    assert_eq!(partial.commands.len(), 2, "{:?}", partial.commands);
    assert_eq!(partial.commands[1].exit_code, None);
    assert_eq!(
        fs::read_to_string(partial.files_dir.join("before.txt")).unwrap(),
        "before-panic\n"
    );
}

#[test]
fn a_bad_kernel_path_is_a_clear_error() {
    // No guest boots, but the check runs where qemu would start.
    if !xskdbg_testenv::require("a_bad_kernel_path_is_a_clear_error", &[Cap::Guest]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("vmlinux");
    fs::write(&fake, b"\x7fELF not a bzImage").unwrap();
    let mut spec = spec(dir.path());
    spec.kernel = KernelSource::Path {
        image: fake,
        modules_dir: None,
    };
    spec.commands.push("true".into());
    match run(&spec) {
        Err(VmError::BadKernel { reason, .. }) => assert!(reason.contains("bzImage"), "{reason}"),
        other => panic!("expected BadKernel, got {other:?}"),
    }
}
