//! Bringing the guest's results back: the tar archive the guest wrote to its raw
//! result disk is unpacked on the host and decoded into per-command results.
//!
//! The guest rewrites the whole archive after every command, so a guest that dies
//! part-way still leaves the results of the commands that finished.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::VmError;

/// Exit code a shell reports for a process killed by SIGKILL (what `timeout -s KILL` sends).
const KILLED: i32 = 128 + 9;

/// One command's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// Position in the spec's command list.
    pub index: usize,
    /// The shell command line.
    pub command: String,
    /// Exit code (`128 + N` for a signal); `None` if the guest died while it ran.
    pub exit_code: Option<i32>,
    /// Killed by its per-command timeout.
    pub timed_out: bool,
    /// How long it ran, by the guest's clock (10 ms resolution).
    pub elapsed: Option<Duration>,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

impl CommandResult {
    /// Exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// Standard output as text (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// What the guest's `/results` held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestResults {
    /// Commands that started, in order.
    pub commands: Vec<CommandResult>,
    /// The guest finished every command.
    pub done: bool,
    /// `uname -r` in the guest.
    pub kernel_release: Option<String>,
    /// Guest uptime when `/init` started, in seconds.
    pub boot_uptime: Option<f64>,
    /// Modules that failed to load (`name: error`).
    pub module_failures: Vec<String>,
    /// Why the guest could not save everything (its `$XSKDBG_OUT` was left out).
    pub save_error: Option<String>,
}

/// Whether a command was killed by its timeout: SIGKILL'd and ran for at least the
/// timeout (minus the guest clock's resolution).
pub fn timed_out(exit_code: Option<i32>, elapsed: Option<Duration>, timeout_secs: u64) -> bool {
    exit_code == Some(KILLED)
        && elapsed
            .is_some_and(|e| e + Duration::from_millis(500) >= Duration::from_secs(timeout_secs))
}

fn parse_secs(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// Decodes an unpacked `/results` directory. `commands[i]` and `timeouts[i]` are the
/// spec's command line and timeout (seconds) of command `i`.
pub fn decode(dir: &Path, commands: &[String], timeouts: &[u64]) -> GuestResults {
    let read = |p: PathBuf| fs::read(p).ok();
    let text = |p: PathBuf| fs::read_to_string(p).ok();
    let mut res = GuestResults {
        done: dir.join("done").exists(),
        kernel_release: text(dir.join("uname")).map(|s| s.trim().to_string()),
        boot_uptime: text(dir.join("boot_uptime")).and_then(|s| parse_secs(&s)),
        save_error: text(dir.join("save_error")).map(|s| s.trim().to_string()),
        ..GuestResults::default()
    };
    if let Some(mods) = text(dir.join("modules")) {
        res.module_failures = mods
            .lines()
            .filter_map(|l| l.strip_prefix("failed "))
            .map(str::to_string)
            .collect();
    }
    for (index, command) in commands.iter().enumerate() {
        let d = dir.join("cmd").join(format!("{index:03}"));
        if !d.is_dir() {
            break;
        }
        let exit_code = text(d.join("rc")).and_then(|s| s.trim().parse::<i32>().ok());
        let elapsed = match (
            text(d.join("start")).and_then(|s| parse_secs(&s)),
            text(d.join("end")).and_then(|s| parse_secs(&s)),
        ) {
            (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
            _ => None,
        };
        let timeout = timeouts.get(index).copied().unwrap_or(u64::MAX);
        res.commands.push(CommandResult {
            index,
            command: command.clone(),
            exit_code,
            timed_out: timed_out(exit_code, elapsed, timeout),
            elapsed,
            stdout: read(d.join("stdout")).unwrap_or_default(),
            stderr: read(d.join("stderr")).unwrap_or_default(),
        });
    }
    res
}

/// Unpacks the archive at the start of the raw disk image into `dest` (which must not
/// exist; it is created through a temporary sibling and a rename). Returns `false`
/// when the disk holds no archive (the guest never wrote one).
pub fn unpack_disk(disk: &Path, dest: &Path) -> Result<bool, VmError> {
    let bad = |reason: String| VmError::Results {
        disk: disk.to_path_buf(),
        reason,
    };
    let mut f =
        File::open(disk).map_err(|e| VmError::io(format!("cannot open {}", disk.display()), e))?;
    let mut first = [0u8; 512];
    match f.read_exact(&mut first) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(VmError::io(format!("cannot read {}", disk.display()), e)),
    }
    if first.iter().all(|&b| b == 0) {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(0))
        .map_err(|e| VmError::io(format!("cannot read {}", disk.display()), e))?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".guest-")
        .tempdir_in(parent)
        .map_err(|e| {
            VmError::io(
                format!("cannot create a directory in {}", parent.display()),
                e,
            )
        })?;
    let mut archive = tar::Archive::new(f);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    // The archive ends at its zero blocks; whatever follows on the disk (a longer
    // archive from an earlier save) is ignored. unpack refuses paths leaving `tmp`.
    archive
        .unpack(tmp.path())
        .map_err(|e| bad(format!("not a readable tar archive: {e}")))?;
    fs::rename(tmp.path(), dest)
        .map_err(|e| VmError::io(format!("cannot move results to {}", dest.display()), e))?;
    // The directory now lives at `dest`; keep TempDir from deleting anything.
    let _ = tmp.keep();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn write_results(root: &Path) {
        let c0 = root.join("cmd/000");
        let c1 = root.join("cmd/001");
        let c2 = root.join("cmd/002");
        for d in [&c0, &c1, &c2, &root.join("out/sub")] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(root.join("uname"), "6.1.0-56-cloud-amd64\n").unwrap();
        fs::write(root.join("boot_uptime"), "3.42\n").unwrap();
        fs::write(
            root.join("modules"),
            "ok virtio\nfailed veth: insmod: bad\n",
        )
        .unwrap();
        fs::write(c0.join("stdout"), "hello\n").unwrap();
        fs::write(c0.join("stderr"), "").unwrap();
        fs::write(c0.join("rc"), "0\n").unwrap();
        fs::write(c0.join("start"), "4.10\n").unwrap();
        fs::write(c0.join("end"), "4.35\n").unwrap();
        fs::write(c1.join("stdout"), "").unwrap();
        fs::write(c1.join("stderr"), "").unwrap();
        fs::write(c1.join("rc"), "137\n").unwrap();
        fs::write(c1.join("start"), "4.40\n").unwrap();
        fs::write(c1.join("end"), "6.40\n").unwrap();
        // Command 2 started but the guest died: no rc, no end.
        fs::write(c2.join("start"), "6.50\n").unwrap();
        fs::write(root.join("out/sub/trace.txt"), "trace\n").unwrap();
    }

    #[test]
    fn decodes_finished_killed_and_unfinished_commands() {
        let dir = tempfile::tempdir().unwrap();
        write_results(dir.path());
        let cmds: Vec<String> = ["echo hello", "sleep 100", "cat /x", "never"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = decode(dir.path(), &cmds, &[60, 2, 60, 60]);
        assert!(!r.done);
        assert_eq!(r.kernel_release.as_deref(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(r.boot_uptime, Some(3.42));
        assert_eq!(r.module_failures, ["veth: insmod: bad"]);
        assert_eq!(r.commands.len(), 3);
        assert!(r.commands[0].success());
        assert_eq!(r.commands[0].stdout_str(), "hello\n");
        assert!(!r.commands[0].timed_out);
        let e = r.commands[0].elapsed.unwrap().as_millis();
        assert!((249..=251).contains(&e), "{e}");
        assert_eq!(r.commands[1].exit_code, Some(137));
        assert!(r.commands[1].timed_out);
        assert_eq!(r.commands[2].exit_code, None);
        assert_eq!(r.commands[2].command, "cat /x");
    }

    #[test]
    fn a_save_error_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        write_results(dir.path());
        assert_eq!(decode(dir.path(), &[], &[]).save_error, None);
        fs::write(dir.path().join("save_error"), "did not fit\n").unwrap();
        assert_eq!(
            decode(dir.path(), &[], &[]).save_error.as_deref(),
            Some("did not fit")
        );
    }

    #[test]
    fn a_kill_before_the_timeout_is_not_a_timeout() {
        assert!(!timed_out(Some(137), Some(Duration::from_secs(1)), 60));
        assert!(timed_out(
            Some(137),
            Some(Duration::from_millis(59_700)),
            60
        ));
        assert!(!timed_out(Some(1), Some(Duration::from_secs(90)), 60));
    }

    /// Writes the archive the way the guest does (busybox tar to a raw disk), including
    /// leftovers of an earlier, longer archive after the end.
    #[test]
    fn unpacks_a_busybox_tar_from_a_raw_disk() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        write_results(&results);
        let disk = dir.path().join("disk.img");
        let mut img = vec![0xAAu8; 1 << 20];
        let tar = if Path::new("/bin/busybox").exists() {
            Command::new("/bin/busybox")
                .args(["tar", "-cf", "-", "-C"])
                .arg(&results)
                .arg(".")
                .output()
                .unwrap()
        } else {
            Command::new("tar")
                .args(["-cf", "-", "-C"])
                .arg(&results)
                .arg(".")
                .output()
                .unwrap()
        };
        assert!(tar.status.success());
        img[..tar.stdout.len()].copy_from_slice(&tar.stdout);
        fs::write(&disk, &img).unwrap();
        let dest = dir.path().join("guest");
        assert!(unpack_disk(&disk, &dest).unwrap());
        assert_eq!(
            fs::read_to_string(dest.join("out/sub/trace.txt")).unwrap(),
            "trace\n"
        );
        let r = decode(&dest, &["echo hello".into()], &[60]);
        assert_eq!(r.commands[0].stdout_str(), "hello\n");
    }

    #[test]
    fn empty_disk_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        fs::write(&disk, vec![0u8; 4096]).unwrap();
        assert!(!unpack_disk(&disk, &dir.path().join("g1")).unwrap());
        fs::write(&disk, vec![0x41u8; 4096]).unwrap();
        assert!(matches!(
            unpack_disk(&disk, &dir.path().join("g2")),
            Err(VmError::Results { .. })
        ));
    }
}
