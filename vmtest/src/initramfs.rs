//! The guest's root file system: a gzip'd cpio archive built on the fly, and its
//! `/init` script.
//!
//! Guest layout:
//! - `/bin/busybox` and its applets as links in `/bin` (but not `ip`: iproute2's `ip`
//!   lives at `/usr/sbin/ip`; call it by that full path to be sure you get it);
//! - `/opt/xskdbg/bin/NAME`: the binaries asked for, first on `PATH`, with the shared
//!   libraries they link at the same absolute paths as on the host;
//! - `/lib/modules/VER/...`: the kernel modules to `insmod`, in dependency order;
//! - `/etc/xskdbg/cmd/NNN.sh`: the commands, run by `/init` one by one;
//! - `/results`: what goes back to the host (`cmd/NNN/{stdout,stderr,rc,start,end}`,
//!   `out/` = `$XSKDBG_OUT` for the commands' own files, `uname`, `modules`, `done`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::cpio::CpioWriter;
use crate::libs::shared_libraries;
use crate::VmError;

/// Where the binaries given with `--bin` land in the guest (first on `PATH`).
pub const GUEST_BIN_DIR: &str = "/opt/xskdbg/bin";
/// The directory whose contents come back to the host; exported as `$XSKDBG_OUT`.
pub const GUEST_OUT_DIR: &str = "/results/out";
/// iproute2's `ip` in the guest (busybox's `ip` applet would otherwise shadow it).
pub const GUEST_IP: &str = "/usr/sbin/ip";
/// The working directory of every command.
pub const GUEST_HOME: &str = "/root";

/// One node of the guest file system.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    Bytes { perm: u32, data: Vec<u8> },
    HostFile { perm: u32, path: PathBuf },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

/// Normalizes a guest path: absolute, no `.`/`..`, no trailing slash; returned
/// without the leading `/` (the form cpio wants).
pub fn guest_path(p: &str) -> Result<String, VmError> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(VmError::Spec(format!("guest path {p:?} must be absolute")));
    }
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {
                return Err(VmError::Spec(format!(
                    "guest path {p:?} must not contain . or .."
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(VmError::Spec(format!(
            "guest path {p:?} names the root directory"
        )));
    }
    Ok(parts.join("/"))
}

/// The guest root file system being assembled.
#[derive(Debug, Clone)]
pub struct Initramfs {
    nodes: BTreeMap<String, Node>,
}

impl Default for Initramfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Initramfs {
    /// The skeleton every guest has: mount points, `/dev/console` (the kernel opens it
    /// for init's output before `/dev` is mounted), and minimal `/etc` files.
    pub fn new() -> Self {
        let mut fs = Initramfs {
            nodes: BTreeMap::new(),
        };
        for d in [
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "proc",
            "sys",
            "dev",
            "tmp",
            "run",
            "root",
            "mnt",
            "var/tmp",
            "results/out",
            "results/cmd",
            "opt/xskdbg/bin",
            "etc/xskdbg/cmd",
        ] {
            fs.nodes.insert(d.to_string(), Node::Dir);
        }
        fs.nodes
            .insert("dev/console".into(), Node::CharDev { major: 5, minor: 1 });
        fs.nodes
            .insert("dev/null".into(), Node::CharDev { major: 1, minor: 3 });
        let etc: [(&str, &str); 4] = [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
            ("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"),
            (
                "etc/nsswitch.conf",
                "passwd: files\ngroup: files\nhosts: files\n",
            ),
        ];
        for (path, text) in etc {
            fs.nodes.insert(
                path.into(),
                Node::Bytes {
                    perm: 0o644,
                    data: text.as_bytes().to_vec(),
                },
            );
        }
        fs
    }

    /// Adds a file with the given contents.
    pub fn add_bytes(&mut self, guest: &str, perm: u32, data: Vec<u8>) -> Result<(), VmError> {
        self.nodes
            .insert(guest_path(guest)?, Node::Bytes { perm, data });
        Ok(())
    }

    /// Adds a symbolic link.
    pub fn add_symlink(&mut self, guest: &str, target: &str) -> Result<(), VmError> {
        self.nodes
            .insert(guest_path(guest)?, Node::Symlink(target.to_string()));
        Ok(())
    }

    /// Adds a host file (its permissions kept) or, recursively, a host directory.
    /// Symbolic links are followed: the guest gets the contents.
    pub fn add_host_path(&mut self, guest: &str, host: &Path) -> Result<(), VmError> {
        let meta = fs::metadata(host)
            .map_err(|e| VmError::io(format!("cannot read {}", host.display()), e))?;
        let key = guest_path(guest)?;
        if meta.is_dir() {
            self.nodes.insert(key.clone(), Node::Dir);
            let entries = fs::read_dir(host)
                .map_err(|e| VmError::io(format!("cannot list {}", host.display()), e))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| VmError::io(format!("cannot list {}", host.display()), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                self.add_host_path(&format!("/{key}/{name}"), &entry.path())?;
            }
        } else {
            self.nodes.insert(
                key,
                Node::HostFile {
                    perm: meta.permissions().mode() & 0o7777,
                    path: host.to_path_buf(),
                },
            );
        }
        Ok(())
    }

    /// Adds an executable and every shared library it links (per `ldd`), the libraries
    /// at their host paths.
    pub fn add_binary(&mut self, guest: &str, host: &Path) -> Result<(), VmError> {
        if !host.is_file() {
            return Err(VmError::Spec(format!(
                "binary {} does not exist or is not a file",
                host.display()
            )));
        }
        self.add_host_path(guest, host)?;
        for lib in shared_libraries(host)? {
            let lib_str = lib.to_string_lossy().into_owned();
            self.add_host_path(&lib_str, &lib)?;
        }
        Ok(())
    }

    /// Whether a path is already present.
    pub fn contains(&self, guest: &str) -> bool {
        guest_path(guest).is_ok_and(|k| self.nodes.contains_key(&k))
    }

    /// Writes the archive (cpio newc, gzip'd if `gzip`) atomically to `dest`.
    pub fn write(&self, dest: &Path, gzip: bool) -> Result<(), VmError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| VmError::io(format!("cannot create a file in {}", dir.display()), e))?;
        let werr = |e| VmError::io(format!("cannot write {}", dest.display()), e);
        let out = BufWriter::new(tmp.as_file());
        if gzip {
            // Level 1: the guest inflates under emulation; a bigger archive costs less
            // than slower inflation of a better-compressed one.
            let gz = self
                .write_cpio(GzEncoder::new(out, Compression::fast()))
                .map_err(werr)?;
            gz.finish().map_err(werr)?.flush().map_err(werr)?;
        } else {
            self.write_cpio(out).map_err(werr)?.flush().map_err(werr)?;
        }
        tmp.persist(dest)
            .map_err(|e| VmError::io(format!("cannot write {}", dest.display()), e.error))?;
        Ok(())
    }

    fn write_cpio<W: Write>(&self, out: W) -> std::io::Result<W> {
        let mut cpio = CpioWriter::new(out);
        for (name, node) in self.with_parents() {
            match node {
                Node::Dir => cpio.dir(&name, 0o755)?,
                Node::Bytes { perm, data } => cpio.file(&name, *perm, data)?,
                Node::HostFile { perm, path } => {
                    let data = fs::read(path).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                    cpio.file(&name, *perm, &data)?
                }
                Node::Symlink(target) => cpio.symlink(&name, target)?,
                Node::CharDev { major, minor } => cpio.char_dev(&name, 0o600, *major, *minor)?,
            }
        }
        cpio.finish()
    }

    /// All nodes plus any missing parent directories, parents first (a BTreeMap orders
    /// "a" before "a/b").
    fn with_parents(&self) -> BTreeMap<String, &Node> {
        const DIR: &Node = &Node::Dir;
        let mut all: BTreeMap<String, &Node> = BTreeMap::new();
        for (name, node) in &self.nodes {
            let mut prefix = String::new();
            let parts: Vec<&str> = name.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                all.entry(prefix.clone()).or_insert(DIR);
            }
            all.insert(name.clone(), node);
        }
        all
    }
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What `/init` does.
#[derive(Debug, Clone, Default)]
pub struct InitPlan {
    /// Modules to load, in order: (guest path of the `.ko`, module name).
    pub modules: Vec<(String, String)>,
    /// Per command, its timeout in whole seconds; command `i` is `/etc/xskdbg/cmd/NNN.sh`.
    pub command_timeouts: Vec<u64>,
    /// Extra environment for the commands.
    pub env: Vec<(String, String)>,
}

/// The guest path of command `index`'s script.
pub fn command_script_path(index: usize) -> String {
    format!("/etc/xskdbg/cmd/{index:03}.sh")
}

/// Console line prefix of the init's messages; the host watches for these.
pub const MARK: &str = "xskdbg-vm:";
/// Console marker: init is running (ends the boot timeout).
pub const MARK_STARTED: &str = "xskdbg-vm: init started";
/// Console marker: everything ran and the results were written.
pub const MARK_DONE: &str = "xskdbg-vm: done";
/// Console marker prefix of `command NNN started`.
pub const MARK_COMMAND: &str = "xskdbg-vm: command ";
/// Console marker prefix of init's errors.
pub const MARK_ERROR: &str = "xskdbg-vm: error:";

/// The `/init` script (pure).
pub fn init_script(plan: &InitPlan) -> Result<String, VmError> {
    let mut s = String::new();
    s.push_str(INIT_HEAD);
    for (k, v) in &plan.env {
        let valid = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(VmError::Spec(format!(
                "environment variable name {k:?} is not valid"
            )));
        }
        let _ = writeln!(s, "export {k}={}", shell_quote(v));
    }
    s.push_str(INIT_MOUNTS);
    for (path, name) in &plan.modules {
        let _ = writeln!(s, "load {} {}", shell_quote(path), shell_quote(name));
    }
    s.push_str(INIT_DISK);
    for (i, timeout) in plan.command_timeouts.iter().enumerate() {
        let _ = writeln!(s, "run_cmd {i:03} {}", timeout.max(&1));
    }
    s.push_str(INIT_TAIL);
    Ok(s)
}

const INIT_HEAD: &str = r#"#!/bin/sh
# /init of an xskdbg-vmtest guest (generated by vmtest/src/initramfs.rs).
export PATH=/opt/xskdbg/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM=dumb XSKDBG_VM=1 XSKDBG_OUT=/results/out RUST_BACKTRACE=1
"#;

const INIT_MOUNTS: &str = r#"say() { echo "xskdbg-vm: $*"; }
trymount() { mkdir -p "$3"; mount -t "$1" "$2" "$3" 2>/tmp/mount.err || say "warning: cannot mount $1 on $3: $(cat /tmp/mount.err)"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
trymount devpts devpts /dev/pts
trymount tmpfs tmpfs /dev/shm
trymount tmpfs tmpfs /run
trymount tracefs tracefs /sys/kernel/tracing
trymount debugfs debugfs /sys/kernel/debug
trymount bpf bpf /sys/fs/bpf
trymount cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /results/out /results/cmd
uname -r > /results/uname
cut -d' ' -f1 /proc/uptime > /results/boot_uptime
say "init started (kernel $(uname -r), uptime $(cat /results/boot_uptime) s)"
: > /results/modules
# modprobe would pass MOD.PARAM=VALUE words of the kernel command line to a module;
# insmod does not, so do it here.
modparams() {
  for w in $(cat /proc/cmdline); do
    case "$w" in "$1".*=*) printf '%s ' "${w#"$1".}" ;; esac
  done
}
load() {
  if insmod "$1" $(modparams "$2") 2>/tmp/insmod.err; then
    echo "ok $2" >> /results/modules
  else
    e=$(tr '\n' ' ' < /tmp/insmod.err)
    echo "failed $2: $e" >> /results/modules
    say "error: insmod $2 failed: $e"
  fi
}
"#;

const INIT_DISK: &str = r#"busybox ip link set lo up
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || say "error: no /dev/vda: the kernel lacks virtio-blk (CONFIG_VIRTIO_PCI and CONFIG_VIRTIO_BLK, or their modules); results cannot reach the host"
save() {
  [ -b /dev/vda ] || return
  sync
  if ! (set -o pipefail; tar -cf - -C /results . 2>/tmp/tar.err | dd of=/dev/vda bs=1M conv=fsync 2>/tmp/dd.err); then
    say "error: writing results to /dev/vda failed: $(cat /tmp/tar.err /tmp/dd.err | tr '\n' ' ')"
    # Keep at least the commands' own results: try again without $XSKDBG_OUT.
    echo "the results did not fit the result disk ($(cat /tmp/dd.err | tr '\n' ' ')); \$XSKDBG_OUT was left out" > /results/save_error
    (cd /results && set -o pipefail && tar -cf - $(ls -A | grep -vx out) | dd of=/dev/vda bs=1M conv=fsync 2>/dev/null) \
      || say "error: even without \$XSKDBG_OUT the results do not fit the result disk"
  fi
}
run_cmd() {
  d=/results/cmd/$1
  mkdir -p "$d"
  say "command $1 started"
  cut -d' ' -f1 /proc/uptime > "$d/start"
  (cd /root && exec timeout -s KILL "$2" /bin/sh "/etc/xskdbg/cmd/$1.sh") </dev/null >"$d/stdout" 2>"$d/stderr"
  rc=$?
  cut -d' ' -f1 /proc/uptime > "$d/end"
  echo "$rc" > "$d/rc"
  say "command $1 exited $rc"
  save
}
save
"#;

const INIT_TAIL: &str = r#"echo ok > /results/done
save
say "done"
poweroff -f
sleep 10
reboot -f
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_checked() {
        assert_eq!(guest_path("/a/b/").unwrap(), "a/b");
        assert_eq!(guest_path("//a//b").unwrap(), "a/b");
        assert!(guest_path("a/b").is_err());
        assert!(guest_path("/a/../b").is_err());
        assert!(guest_path("/").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("veth.race_window_us=50"),
            "veth.race_window_us=50"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn init_script_loads_modules_in_order_and_runs_each_command() {
        let plan = InitPlan {
            modules: vec![
                ("/lib/modules/v/virtio.ko".into(), "virtio".into()),
                ("/lib/modules/v/veth.ko".into(), "veth".into()),
            ],
            command_timeouts: vec![30, 0],
            env: vec![("CI".into(), "true".into()), ("X".into(), "a b".into())],
        };
        let s = init_script(&plan).unwrap();
        let virtio = s.find("load /lib/modules/v/virtio.ko virtio").unwrap();
        let veth = s.find("load /lib/modules/v/veth.ko veth").unwrap();
        assert!(virtio < veth);
        assert!(s.find("run_cmd 000 30\n").unwrap() < s.find("run_cmd 001 1\n").unwrap());
        assert!(s.contains("export CI=true\nexport X='a b'\n"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.trim_end().ends_with("reboot -f"));
        assert!(init_script(&InitPlan {
            env: vec![("1X".into(), String::new())],
            ..InitPlan::default()
        })
        .is_err());
    }

    #[test]
    fn init_script_is_valid_shell() {
        let plan = InitPlan {
            modules: vec![("/m.ko".into(), "m".into())],
            command_timeouts: vec![5],
            env: vec![],
        };
        let s = init_script(&plan).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("init");
        fs::write(&p, s).unwrap();
        let st = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
    }

    #[test]
    fn archive_has_parents_before_children() {
        let mut fs = Initramfs::new();
        fs.add_bytes("/deep/a/b/c", 0o644, b"x".to_vec()).unwrap();
        let names: Vec<String> = fs.with_parents().keys().cloned().collect();
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("deep") < pos("deep/a"));
        assert!(pos("deep/a/b") < pos("deep/a/b/c"));
        let dir = tempfile::tempdir().unwrap();
        for gzip in [false, true] {
            let out = dir.path().join("initrd");
            fs.write(&out, gzip).unwrap();
            // The system's cpio (scripts/setup.sh installs it) must list what we wrote.
            let script = if gzip {
                "zcat \"$0\" | cpio -t"
            } else {
                "cpio -t < \"$0\""
            };
            let list = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                list.status.success(),
                "cpio -t: {}",
                String::from_utf8_lossy(&list.stderr)
            );
            let names = String::from_utf8_lossy(&list.stdout);
            assert!(names.lines().any(|l| l == "deep/a/b/c"), "{names}");
            assert!(names.lines().any(|l| l == "dev/console"), "{names}");
        }
    }
}
