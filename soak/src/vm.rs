//! `xskdbg soak --vm`: the same soak inside a qemu guest.
//!
//! The host this project grew on refuses function probes, and the veth race
//! only lives in an old (or deliberately patched) kernel, so the soak also
//! runs in a guest booted by `xskdbg-vmtest`: the calling binary is copied
//! into the guest with its libraries, runs `soak` there with the same flags
//! and `--out $XSKDBG_OUT/soak`, and what it wrote (summary, trace, reports)
//! is copied into the host's `--out`, with the guest console beside it.
//! Several soaks can share one boot (one per probe backend, say: a TCG boot
//! costs more than a short soak); each then writes into its own directory.
//!
//! The pure parts (the guest command line, how an exit status maps back)
//! are separate from [`run_in_vm`], the one function that boots a guest.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the guest kernel comes from (`debian`, `debian:NN`, a bzImage).
pub use xskdbg_vmtest::KernelSource;
/// A host file copied into the guest.
pub use xskdbg_vmtest::{Binary, FileMapping};
use xskdbg_vmtest::{VmError, VmOutcome, VmSpec};

/// The guest's `$XSKDBG_OUT`.
pub use xskdbg_vmtest::GUEST_OUT_DIR as GUEST_OUT;
/// The directory under the guest's `$XSKDBG_OUT` the soak writes into.
pub const GUEST_SUBDIR: &str = "soak";

/// One soak of a guest boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRun {
    /// Its directory under `--out` (and under the guest's
    /// `$XSKDBG_OUT/soak`); empty: `--out` itself (a boot with one soak).
    pub name: String,
    /// Arguments for the guest after the program name (`soak` first), without
    /// `--out`: it is added pointing into the guest's `$XSKDBG_OUT`.
    pub args: Vec<String>,
}

/// Soaks in one guest boot.
#[derive(Debug, Clone)]
pub struct VmSoak {
    /// The host binary that understands `soak ...` (normally `xskdbg` itself).
    pub program: PathBuf,
    /// The soaks, run one after the other (a failing one does not stop the
    /// next).
    pub runs: Vec<GuestRun>,
    /// Host files the soaks (or the `also` commands) read (e.g.
    /// `--kprobe-events`), copied in.
    pub files: Vec<FileMapping>,
    /// Other programs for the `also` commands, put on the guest's `PATH`.
    pub binaries: Vec<Binary>,
    /// Shell commands run after the soaks in the same boot (a TCG boot costs
    /// minutes: a nightly job or a test shares it). Command N (from 1) gets
    /// `$XSKDBG_OUT` = a directory that comes back as `--out/also/N/`.
    pub also: Vec<String>,
    /// The kernel to boot.
    pub kernel: KernelSource,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory, MiB.
    pub memory_mb: u32,
    /// Extra kernel command line (`veth.race_window_us=50 ...`).
    pub append: String,
    /// Limit of the whole VM run (boot, soak, analysis, copying back).
    pub timeout: Duration,
    /// Host directory for the results (created if missing).
    pub out: PathBuf,
}

/// What one guest soak ended with.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's name ([`GuestRun::name`]).
    pub name: String,
    /// Its exit status: 0 clean, 1 violation or finding, 2 error.
    pub exit_code: u8,
    /// Its standard output (the soak's one-paragraph result).
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// How one `also` command ended. Its exit status is its own: it does not
/// change the soaks' verdict.
#[derive(Debug, Clone)]
pub struct AlsoOutcome {
    /// Its number, from 1 (`--out/also/N/`).
    pub number: usize,
    /// Its exit status (`128 + N` for a signal); `None` if it never ended
    /// (the guest stopped, or it never started).
    pub exit_code: Option<i32>,
    /// Killed by the VM's time limit.
    pub timed_out: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// What the guest soaks brought back.
#[derive(Debug, Clone)]
pub struct VmSoakOutcome {
    /// The worst exit status of the runs (2 over 1 over 0).
    pub exit_code: u8,
    /// Every run, in order.
    pub runs: Vec<RunOutcome>,
    /// Every `also` command, in order.
    pub also: Vec<AlsoOutcome>,
    /// Files copied into the host's `--out`.
    pub copied: Vec<PathBuf>,
    /// `uname -r` in the guest.
    pub kernel_release: Option<String>,
    /// Where the kernel came from (Debian package or path).
    pub kernel: String,
    /// Kernel WARN/BUG/Oops lines seen on the guest console.
    pub kernel_warnings: Vec<String>,
    /// Host time of the whole VM run.
    pub wall_time: Duration,
}

/// Why a guest soak gave no verdict (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VmSoakError {
    /// The VM could not run, or died (its partial results, if any, were
    /// copied into `--out` first).
    #[error("VM: {0}")]
    Vm(#[from] VmError),
    /// A guest soak ended without a verdict (killed, timed out, crashed).
    #[error("the soak{run} in the guest {how}; guest console: {console}; its stderr ends with:\n{stderr_tail}")]
    Guest {
        /// ` NAME` of a named run, or empty.
        run: String,
        /// What happened (`timed out after 300 s`, `exited with 134`).
        how: String,
        /// The console log copied into `--out`.
        console: PathBuf,
        /// The last lines of the guest soak's stderr.
        stderr_tail: String,
    },
    /// Copying the results into `--out` failed.
    #[error("copying the guest's results to {path}: {source}")]
    Copy {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Quotes one word for the guest's `/bin/sh` (only when needed).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:/=+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The shell line the guest runs: `NAME ARGS... --out "$XSKDBG_OUT/soak"`
/// (`.../soak/RUN` for a named run).
pub fn guest_command_line(program_name: &str, run: &GuestRun) -> String {
    let mut line = shell_quote(program_name);
    for a in &run.args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let sub = if run.name.is_empty() {
        String::new()
    } else {
        format!("/{}", shell_quote(&run.name))
    };
    line.push_str(&format!(" --out \"$XSKDBG_OUT/{GUEST_SUBDIR}\"{sub}"));
    line
}

/// The shell line of `also` command `number`: its own `$XSKDBG_OUT` under
/// the soak's, so that it comes back with the soak's files as `also/N/`.
pub fn also_command_line(number: usize, command: &str) -> String {
    format!(
        "XSKDBG_OUT=\"$XSKDBG_OUT/{GUEST_SUBDIR}/also/{number}\"; export XSKDBG_OUT; \
         mkdir -p \"$XSKDBG_OUT\" && cd \"$XSKDBG_OUT\" && {{\n{command}\n}}"
    )
}

/// Maps the guest command's end to the soak's exit status: 0, 1 and 2 are
/// the soak's own answers; anything else (a signal, a timeout, a guest that
/// died mid-run) is no verdict, described for the error message.
pub fn verdict_exit(
    exit_code: Option<i32>,
    timed_out: bool,
    limit: Duration,
) -> Result<u8, String> {
    match (exit_code, timed_out) {
        (_, true) => Err(format!("timed out after {} s", limit.as_secs())),
        (Some(c @ 0..=2), false) => Ok(c as u8),
        (Some(c), false) if c > 128 => Err(format!("was killed by signal {}", c - 128)),
        (Some(c), false) => Err(format!("exited with {c}")),
        (None, false) => Err("never finished (the guest stopped while it ran)".into()),
    }
}

/// The exit status of several soaks: an error (2) over a finding (1) over
/// clean (0).
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes.into_iter().max().unwrap_or(0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Copies regular files of `from` (recursively) into `to`; returns the
/// destination paths. Each file is written to a temporary name and renamed.
fn copy_tree(from: &Path, to: &Path, copied: &mut Vec<PathBuf>) -> Result<(), VmSoakError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VmSoakError::Copy { path, source }
    };
    std::fs::create_dir_all(to).map_err(err(to))?;
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        // The guest soak may have failed before creating its directory.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(from)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(err(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ty = entry.file_type().map_err(err(&src))?;
        if ty.is_dir() {
            copy_tree(&src, &dst, copied)?;
        } else if ty.is_file() {
            let tmp = to.join(format!(".{}.tmp", entry.file_name().to_string_lossy()));
            std::fs::copy(&src, &tmp).map_err(err(&tmp))?;
            std::fs::rename(&tmp, &dst).map_err(err(&dst))?;
            copied.push(dst);
        }
    }
    Ok(())
}

/// Copies what a (possibly partial) VM run left: the soak's files and the
/// console log (as `console.log`).
fn bring_back(vm: &VmOutcome, out: &Path, copied: &mut Vec<PathBuf>) -> Result<(), VmSoakError> {
    copy_tree(&vm.files_dir.join(GUEST_SUBDIR), out, copied)?;
    if vm.console_log.is_file() {
        let dst = out.join("console.log");
        let tmp = out.join(".console.log.tmp");
        std::fs::copy(&vm.console_log, &tmp).map_err(|source| VmSoakError::Copy {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &dst).map_err(|source| VmSoakError::Copy {
            path: dst.clone(),
            source,
        })?;
        copied.push(dst);
    }
    Ok(())
}

/// Writes `also/N.stdout`, `.stderr` and `.rc` (the exit status, or
/// `timed-out` / `none`) beside the command's directory.
fn save_also(out: &Path, o: &AlsoOutcome, copied: &mut Vec<PathBuf>) -> Result<(), VmSoakError> {
    let dir = out.join("also");
    std::fs::create_dir_all(&dir).map_err(|source| VmSoakError::Copy {
        path: dir.clone(),
        source,
    })?;
    let rc = match (o.exit_code, o.timed_out) {
        (_, true) => "timed-out".to_string(),
        (Some(c), false) => c.to_string(),
        (None, false) => "none".to_string(),
    };
    for (ext, text) in [("stdout", &o.stdout), ("stderr", &o.stderr), ("rc", &rc)] {
        let dst = dir.join(format!("{}.{ext}", o.number));
        let tmp = dir.join(format!(".{}.{ext}.tmp", o.number));
        std::fs::write(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &dst))
            .map_err(|source| VmSoakError::Copy {
                path: dst.clone(),
                source,
            })?;
        copied.push(dst);
    }
    Ok(())
}

/// Boots the guest, runs the soak in it and copies its results into
/// `--out`. A VM failure still copies whatever the guest had saved.
pub fn run_in_vm(v: &VmSoak) -> Result<VmSoakOutcome, VmSoakError> {
    let name = v
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            VmSoakError::Vm(VmError::Spec(format!(
                "{} has no file name",
                v.program.display()
            )))
        })?;
    std::fs::create_dir_all(&v.out).map_err(|source| VmSoakError::Copy {
        path: v.out.clone(),
        source,
    })?;
    // The runner's own directory (console, per-command output, the guest's
    // files) is scratch: what matters is copied into --out.
    let work = tempfile::Builder::new()
        .prefix("xskdbg-soak-vm-")
        .tempdir()
        .map_err(|source| VmSoakError::Copy {
            path: std::env::temp_dir(),
            source,
        })?;
    let mut spec = VmSpec::new(work.path().join("vm"));
    spec.kernel = v.kernel.clone();
    spec.vcpus = v.vcpus;
    spec.memory_mb = v.memory_mb;
    spec.append = v.append.clone();
    spec.timeout = v.timeout;
    spec.binaries.push(v.program.clone().into());
    spec.binaries.extend(v.binaries.iter().cloned());
    spec.files.extend(v.files.iter().cloned());
    if v.runs.is_empty() {
        return Err(VmSoakError::Vm(VmError::Spec("no soak to run".into())));
    }
    for r in &v.runs {
        spec.commands.push(guest_command_line(&name, r).into());
    }
    for (i, c) in v.also.iter().enumerate() {
        spec.commands.push(also_command_line(i + 1, c).into());
    }
    let mut copied = Vec::new();
    let vm = match xskdbg_vmtest::run(&spec) {
        Ok(vm) => vm,
        Err(e) => {
            if let Some(partial) = e.partial() {
                bring_back(partial, &v.out, &mut copied)?;
            }
            return Err(e.into());
        }
    };
    bring_back(&vm, &v.out, &mut copied)?;
    let console = v.out.join("console.log");
    let mut runs = Vec::new();
    for (i, r) in v.runs.iter().enumerate() {
        let named = if r.name.is_empty() {
            String::new()
        } else {
            format!(" {}", r.name)
        };
        let Some(cmd) = vm.commands.get(i) else {
            return Err(VmSoakError::Guest {
                run: named,
                how: "never started".into(),
                console,
                stderr_tail: String::new(),
            });
        };
        let stderr = cmd.stderr_str();
        let exit_code = verdict_exit(cmd.exit_code, cmd.timed_out, v.timeout).map_err(|how| {
            VmSoakError::Guest {
                run: named.clone(),
                how,
                console: console.clone(),
                stderr_tail: tail(&stderr, 20),
            }
        })?;
        runs.push(RunOutcome {
            name: r.name.clone(),
            exit_code,
            stdout: cmd.stdout_str(),
            stderr,
        });
    }
    let mut also = Vec::new();
    for (i, _) in v.also.iter().enumerate() {
        let cmd = vm.commands.get(v.runs.len() + i);
        let o = AlsoOutcome {
            number: i + 1,
            exit_code: cmd.and_then(|c| c.exit_code),
            timed_out: cmd.is_some_and(|c| c.timed_out),
            stdout: cmd.map(|c| c.stdout_str()).unwrap_or_default(),
            stderr: cmd.map(|c| c.stderr_str()).unwrap_or_default(),
        };
        save_also(&v.out, &o, &mut copied)?;
        also.push(o);
    }
    Ok(VmSoakOutcome {
        exit_code: worst_exit(runs.iter().map(|r| r.exit_code)),
        runs,
        also,
        copied,
        kernel_release: vm.kernel_release.clone(),
        kernel: vm.kernel.clone(),
        kernel_warnings: vm.kernel_warnings.clone(),
        wall_time: vm.wall_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_leaves_plain_words_and_protects_the_rest() {
        assert_eq!(shell_quote("--traffic-cpus"), "--traffic-cpus");
        assert_eq!(shell_quote("0,1"), "0,1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$X"), "'$X'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_guest_line_ends_with_the_guest_out_dir() {
        let args: Vec<String> = ["soak", "--duration", "20", "--probes", "auto"]
            .map(String::from)
            .to_vec();
        let mut run = GuestRun {
            name: String::new(),
            args,
        };
        assert_eq!(
            guest_command_line("xskdbg", &run),
            "xskdbg soak --duration 20 --probes auto --out \"$XSKDBG_OUT/soak\""
        );
        // Several soaks in one boot: one directory each.
        run.name = "tracefs".into();
        assert!(guest_command_line("xskdbg", &run).ends_with(" --out \"$XSKDBG_OUT/soak\"/tracefs"));
    }

    #[test]
    fn an_also_command_writes_into_its_own_directory_under_the_soaks() {
        let line = also_command_line(2, "echo hi > x");
        assert!(
            line.starts_with("XSKDBG_OUT=\"$XSKDBG_OUT/soak/also/2\"; export XSKDBG_OUT;"),
            "{line}"
        );
        // Grouped, so that a command of several lines or with `;` is one
        // unit after the setup.
        assert!(line.ends_with("{\necho hi > x\n}"), "{line}");
    }

    #[test]
    fn the_worst_exit_wins() {
        assert_eq!(worst_exit([0, 1, 0]), 1);
        assert_eq!(worst_exit([1, 2, 0]), 2);
        assert_eq!(worst_exit([0, 0]), 0);
        assert_eq!(worst_exit([]), 0);
    }

    #[test]
    fn only_the_soaks_own_answers_are_verdicts() {
        let t = Duration::from_secs(300);
        assert_eq!(verdict_exit(Some(0), false, t), Ok(0));
        assert_eq!(verdict_exit(Some(1), false, t), Ok(1));
        assert_eq!(verdict_exit(Some(2), false, t), Ok(2));
        assert!(verdict_exit(Some(137), true, t)
            .unwrap_err()
            .contains("300 s"));
        assert!(verdict_exit(Some(134), false, t)
            .unwrap_err()
            .contains("signal 6"));
        assert!(verdict_exit(Some(101), false, t).is_err());
        assert!(verdict_exit(None, false, t).is_err());
    }

    #[test]
    fn copying_a_tree_renames_into_place() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("summary.json"), "{}").unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/x"), "y").unwrap();
        let mut copied = Vec::new();
        copy_tree(src.path(), dst.path(), &mut copied).unwrap();
        copied.sort();
        assert_eq!(
            copied,
            vec![dst.path().join("sub/x"), dst.path().join("summary.json")]
        );
        assert_eq!(
            std::fs::read_to_string(dst.path().join("sub/x")).unwrap(),
            "y"
        );
        // A guest soak that died before creating its directory: nothing to copy.
        let mut none = Vec::new();
        copy_tree(&src.path().join("missing"), dst.path(), &mut none).unwrap();
        assert!(none.is_empty());
    }
}
