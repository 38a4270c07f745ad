//! The seam to the host: running host programs and choosing the cache directory.
//!
//! Every external program the runner uses (apt-cache, apt-get, dpkg-deb, depmod, ldd,
//! busybox) goes through [`run_tool`], so a missing one always yields the same
//! "install PACKAGE: run scripts/setup.sh" error.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::VmError;

/// The Debian package that provides a host program the runner uses.
pub fn package_for(tool: &str) -> &'static str {
    match tool {
        "qemu-system-x86_64" => "qemu-system-x86",
        "apt-get" | "apt-cache" => "apt",
        "dpkg-deb" => "dpkg",
        "depmod" => "kmod",
        "xz" => "xz-utils",
        "ldd" => "libc-bin",
        "busybox" => "busybox-static",
        "ip" | "tc" => "iproute2",
        "ethtool" => "ethtool",
        "bpftool" => "bpftool",
        _ => "the package that provides it",
    }
}

/// The error for a program that could not be started.
pub fn spawn_error(tool: &str, e: io::Error) -> VmError {
    if e.kind() == io::ErrorKind::NotFound {
        VmError::ToolMissing {
            tool: tool.to_string(),
            package: package_for(tool).to_string(),
        }
    } else {
        VmError::io(format!("cannot run {tool}"), e)
    }
}

/// Runs a host program to completion and returns its output; a non-zero exit is an error
/// unless `allow_failure`.
pub fn run_tool<I, S>(
    tool: &str,
    args: I,
    cwd: Option<&Path>,
    allow_failure: bool,
) -> Result<Output, VmError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let mut cmd = Command::new(tool);
    cmd.args(&args).stdin(Stdio::null());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd.output().map_err(|e| spawn_error(tool, e))?;
    if !out.status.success() && !allow_failure {
        let line = std::iter::once(tool.to_string())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(VmError::ToolFailed {
            command: line,
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    Ok(out)
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Where downloaded kernels are kept, outside any clone of the repository:
/// `$XSKDBG_CACHE_DIR`, else `$XDG_CACHE_HOME/xskdbg`, else `/var/cache/xskdbg` for root,
/// else `$HOME/.cache/xskdbg`.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("XSKDBG_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return dir.join("xskdbg");
    }
    // Only root can write /var/cache on Debian; probing beats asking for the uid.
    let var_cache = Path::new("/var/cache");
    if is_writable_dir(var_cache) {
        return var_cache.join("xskdbg");
    }
    match env("HOME") {
        Some(home) => home.join(".cache").join("xskdbg"),
        None => std::env::temp_dir().join("xskdbg-cache"),
    }
}

fn is_writable_dir(dir: &Path) -> bool {
    tempfile::Builder::new()
        .prefix(".xskdbg-probe")
        .tempfile_in(dir)
        .is_ok()
}
