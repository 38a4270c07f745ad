//! Which kernel the guest boots: Debian's packaged 6.1 or 6.12 cloud kernel
//! (downloaded once into a cache outside the repository) or any bzImage given by path.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::host::{self, run_tool};
use crate::modules::ModuleIndex;
use crate::VmError;

/// The packages looked for: `linux-image-6.1.0-NN-cloud-amd64-unsigned`.
pub const DEBIAN_PATTERN: &str = "linux-image-6.1.0-NN-cloud-amd64-unsigned";

/// A series of Debian bookworm's cloud kernels. Each names its packages with one
/// number that grows with every upload: 6.1's ABI number (`6.1.0-NN`), 6.12's point
/// release (`6.12.NN+deb12`, from bookworm-backports / -security).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    /// `linux-image-6.1.0-NN-cloud-amd64-unsigned`.
    V6_1,
    /// `linux-image-6.12.NN+deb12-cloud-amd64-unsigned`.
    V6_12,
}

impl Series {
    fn prefix(self) -> &'static str {
        match self {
            Series::V6_1 => "linux-image-6.1.0-",
            Series::V6_12 => "linux-image-6.12.",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Series::V6_1 => "-cloud-amd64-unsigned",
            Series::V6_12 => "+deb12-cloud-amd64-unsigned",
        }
    }

    /// The package name pattern, for messages.
    pub fn pattern(self) -> String {
        format!("{}NN{}", self.prefix(), self.suffix())
    }

    /// The package name of upload `n`.
    pub fn package(self, n: u32) -> String {
        format!("{}{n}{}", self.prefix(), self.suffix())
    }

    /// The upload number of a package name of this series.
    pub fn number(self, package: &str) -> Option<u32> {
        package
            .strip_prefix(self.prefix())?
            .strip_suffix(self.suffix())?
            .parse()
            .ok()
    }

    /// The newest upload among package names, one a line (`apt-cache pkgnames`; the
    /// first word of each line counts, so `apt-cache search` output works too).
    pub fn newest(self, apt_cache_search: &str) -> Option<u32> {
        apt_cache_search
            .lines()
            .filter_map(|l| self.number(l.split_whitespace().next()?))
            .max()
    }

    fn memo_name(self) -> &'static str {
        match self {
            Series::V6_1 => ".newest-abi",
            Series::V6_12 => ".newest-6.12",
        }
    }
}

/// Name of the marker file that says a cached kernel was completely unpacked.
const COMPLETE: &str = ".complete";

/// The kernel to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// Debian's `linux-image-6.1.0-NN-cloud-amd64-unsigned`: the given ABI number NN, or
    /// the newest one `apt-cache` offers.
    Debian {
        /// ABI number (`56` in `6.1.0-56`); `None` for the newest.
        abi: Option<u32>,
    },
    /// Debian's `linux-image-6.12.NN+deb12-cloud-amd64-unsigned` (bookworm-backports):
    /// point release NN, or the newest one `apt-cache` offers. Its modules come
    /// xz-compressed; they are unpacked once into the cache (busybox insmod wants `.ko`).
    Debian612 {
        /// Point release (`118` in `6.12.118`); `None` for the newest.
        point: Option<u32>,
    },
    /// A bzImage on disk, e.g. a self-built kernel with everything the guest needs
    /// built in; modules only if `modules_dir` (a `/lib/modules/VER` tree with
    /// `modules.dep`) is given.
    Path {
        /// The bzImage.
        image: PathBuf,
        /// Its modules, if any are to be loaded.
        modules_dir: Option<PathBuf>,
    },
}

impl KernelSource {
    /// Parses the CLI form: `debian`, `debian:NN` (6.1's ABI number), `debian:6.12`,
    /// `debian:6.12.NN` or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "debian" {
            return Ok(KernelSource::Debian { abi: None });
        }
        if s == "debian:6.12" {
            return Ok(KernelSource::Debian612 { point: None });
        }
        if let Some(point) = s.strip_prefix("debian:6.12.") {
            let point = point.parse().map_err(|_| {
                format!(
                    "--kernel {s}: expected debian:6.12 or debian:6.12.NN, e.g. debian:6.12.118"
                )
            })?;
            return Ok(KernelSource::Debian612 { point: Some(point) });
        }
        if let Some(abi) = s.strip_prefix("debian:") {
            let abi = abi.trim_start_matches("6.1.0-").parse().map_err(|_| {
                format!("--kernel {s}: expected debian:NN with NN the ABI number, e.g. debian:56")
            })?;
            return Ok(KernelSource::Debian { abi: Some(abi) });
        }
        if s.is_empty() {
            return Err(
                "--kernel: expected `debian`, `debian:NN`, `debian:6.12` or a bzImage path".into(),
            );
        }
        Ok(KernelSource::Path {
            image: PathBuf::from(s),
            modules_dir: None,
        })
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct PreparedKernel {
    /// The bzImage.
    pub image: PathBuf,
    /// The kernel release (`uname -r`), when known.
    pub release: Option<String>,
    /// `/lib/modules/VER` on the host, when modules are to be loaded.
    pub modules_dir: Option<PathBuf>,
    /// The module index of `modules_dir`.
    pub modules: Option<ModuleIndex>,
    /// The kernel's build config; the guest gets it as `/boot/config-RELEASE`, where
    /// libbpf (Kconfig externs) and `bpftool feature` look for it.
    pub config: Option<PathBuf>,
    /// For messages: where the kernel came from.
    pub description: String,
}

/// The Debian package name for a 6.1 ABI number.
pub fn debian_package(abi: u32) -> String {
    Series::V6_1.package(abi)
}

/// The ABI number of a Debian 6.1 cloud kernel package name.
pub fn debian_abi(package: &str) -> Option<u32> {
    Series::V6_1.number(package)
}

/// The newest 6.1 ABI number among package names, one a line (see [`Series::newest`]).
pub fn newest_abi(apt_cache_search: &str) -> Option<u32> {
    Series::V6_1.newest(apt_cache_search)
}

/// Checks the x86 boot protocol header of a bzImage: 0xAA55 at 0x1FE, "HdrS" at 0x202.
pub fn check_bzimage(head: &[u8]) -> Result<(), String> {
    if head.len() < 0x210 {
        return Err("too short to be a bzImage".into());
    }
    if head[0x1FE..0x200] != [0x55, 0xAA] || &head[0x202..0x206] != b"HdrS" {
        return Err(
            "not an x86 bzImage (no boot sector signature / \"HdrS\" header); \
                    pass arch/x86/boot/bzImage, not vmlinux"
                .into(),
        );
    }
    Ok(())
}

/// The version string a bzImage carries (`kernel_version` field of the setup header),
/// e.g. `6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...`.
pub fn bzimage_version(image: &[u8]) -> Option<String> {
    let ptr = u16::from_le_bytes([*image.get(0x20E)?, *image.get(0x20F)?]) as usize;
    if ptr == 0 {
        return None;
    }
    let start = ptr + 0x200;
    let rest = image.get(start..)?;
    let end = rest.iter().take(512).position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Resolves a kernel source into files on disk, downloading Debian's package if needed.
pub fn prepare(source: &KernelSource) -> Result<PreparedKernel, VmError> {
    match source {
        KernelSource::Path { image, modules_dir } => prepare_path(image, modules_dir.as_deref()),
        KernelSource::Debian { abi } => prepare_debian(Series::V6_1, *abi, &host::cache_dir()),
        KernelSource::Debian612 { point } => {
            prepare_debian(Series::V6_12, *point, &host::cache_dir())
        }
    }
}

fn prepare_path(image: &Path, modules_dir: Option<&Path>) -> Result<PreparedKernel, VmError> {
    let bytes = fs::read(image).map_err(|e| VmError::BadKernel {
        path: image.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    check_bzimage(&bytes).map_err(|reason| VmError::BadKernel {
        path: image.to_path_buf(),
        reason,
    })?;
    let release =
        bzimage_version(&bytes).and_then(|v| v.split_whitespace().next().map(str::to_string));
    let modules = match modules_dir {
        Some(dir) => Some(load_index(dir)?),
        None => None,
    };
    Ok(PreparedKernel {
        image: image.to_path_buf(),
        release,
        modules_dir: modules_dir.map(Path::to_path_buf),
        modules,
        // A kernel build tree keeps its config next to arch/x86/boot/bzImage.
        config: image
            .ancestors()
            .nth(4)
            .map(|tree| tree.join(".config"))
            .filter(|c| c.is_file()),
        description: format!("bzImage {}", image.display()),
    })
}

/// Reads `modules.dep` and `modules.builtin` of a `/lib/modules/VER` directory.
pub fn load_index(dir: &Path) -> Result<ModuleIndex, VmError> {
    let dep_path = dir.join("modules.dep");
    let dep = fs::read_to_string(&dep_path).map_err(|e| {
        VmError::io(
            format!(
                "{}: (run `depmod -b ROOT VER` to create it)",
                dep_path.display()
            ),
            e,
        )
    })?;
    let builtin = fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    ModuleIndex::parse(&dep, &builtin).map_err(|source| VmError::Module {
        dir: dir.to_path_buf(),
        source,
    })
}

fn prepare_debian(
    series: Series,
    number: Option<u32>,
    cache: &Path,
) -> Result<PreparedKernel, VmError> {
    let root = fetch_debian_series(series, number, cache)?;
    let modules_base = root.join("lib/modules");
    let release = single_release(&modules_base)?;
    let image = root.join("boot").join(format!("vmlinuz-{release}"));
    let config = Some(root.join("boot").join(format!("config-{release}"))).filter(|c| c.is_file());
    let modules_dir = modules_base.join(&release);
    let index = load_index(&modules_dir)?;
    let package = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(PreparedKernel {
        image,
        release: Some(release.clone()),
        modules_dir: Some(modules_dir),
        modules: Some(index),
        config,
        description: format!("Debian {package}"),
    })
}

fn single_release(modules_base: &Path) -> Result<String, VmError> {
    let mut releases = Vec::new();
    let entries = fs::read_dir(modules_base)
        .map_err(|e| VmError::io(format!("cannot list {}", modules_base.display()), e))?;
    for entry in entries.flatten() {
        if entry.path().is_dir() {
            releases.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    match releases.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(VmError::BadKernel {
            path: modules_base.to_path_buf(),
            reason: format!("expected exactly one kernel release directory, found {releases:?}"),
        }),
    }
}

/// Downloads (once) and unpacks Debian's 6.1 cloud kernel package into
/// `CACHE/kernels/PACKAGE/` and returns that directory (holding `boot/` and
/// `lib/modules/VER/` with a `modules.dep` made by `depmod`).
pub fn fetch_debian(abi: Option<u32>, cache: &Path) -> Result<PathBuf, VmError> {
    fetch_debian_series(Series::V6_1, abi, cache)
}

/// [`fetch_debian`] for any series; compressed modules (`.ko.xz`, 6.12) are
/// decompressed and indexed again.
pub fn fetch_debian_series(
    series: Series,
    number: Option<u32>,
    cache: &Path,
) -> Result<PathBuf, VmError> {
    let kernels = cache.join("kernels");
    let abi = match number {
        Some(abi) => abi,
        None => {
            match newest_offered(series, &kernels)? {
                Some(abi) => abi,
                // No apt lists (offline CI image): fall back to the newest cached one.
                None => newest_cached(series, &kernels).ok_or_else(|| VmError::NoDebianKernel {
                    pattern: series.pattern(),
                    cache: kernels.clone(),
                })?,
            }
        }
    };
    let package = series.package(abi);
    let dest = kernels.join(&package);
    if dest.join(COMPLETE).exists() {
        return Ok(dest);
    }
    fs::create_dir_all(&kernels).map_err(|e| {
        VmError::io(
            format!("cannot create cache directory {}", kernels.display()),
            e,
        )
    })?;
    // Unpack into a private directory and rename it into place, so a killed download
    // never leaves a half-unpacked kernel that looks complete.
    let work = tempfile::Builder::new()
        .prefix(&format!(".{package}-"))
        .tempdir_in(&kernels)
        .map_err(|e| {
            VmError::io(
                format!("cannot create a directory in {}", kernels.display()),
                e,
            )
        })?;
    run_tool(
        "apt-get",
        ["download", package.as_str()],
        Some(work.path()),
        false,
    )?;
    let deb = fs::read_dir(work.path())
        .map_err(|e| VmError::io(format!("cannot list {}", work.path().display()), e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| VmError::ToolFailed {
            command: format!("apt-get download {package}"),
            status: "exit 0".into(),
            stderr: "no .deb file appeared".into(),
        })?;
    let tree = work.path().join(&package);
    run_tool(
        "dpkg-deb",
        ["-x".as_ref(), deb.as_os_str(), tree.as_os_str()],
        None,
        false,
    )?;
    let release = single_release(&tree.join("lib/modules"))?;
    let decompressed = decompress_modules(&tree.join("lib/modules").join(&release))?;
    if decompressed
        || !tree
            .join("lib/modules")
            .join(&release)
            .join("modules.dep")
            .exists()
    {
        run_tool(
            "depmod",
            ["-b".as_ref(), tree.as_os_str(), release.as_ref()],
            None,
            false,
        )?;
    }
    fs::write(tree.join(COMPLETE), format!("{release}\n"))
        .map_err(|e| VmError::io(format!("cannot write {}", tree.join(COMPLETE).display()), e))?;
    let _ = fs::remove_file(&deb);
    match fs::rename(&tree, &dest) {
        Ok(()) => Ok(dest),
        // Another run unpacked the same package meanwhile: use theirs.
        Err(_) if dest.join(COMPLETE).exists() => Ok(dest),
        Err(e) => Err(VmError::io(
            format!("cannot move {} to {}", tree.display(), dest.display()),
            e,
        )),
    }
}

/// Unpacks every `*.ko.xz` under `dir` in place (busybox's insmod reads plain `.ko`
/// files only; Debian's 6.12 packages compress their modules). Returns whether any
/// was found, so the caller indexes the modules again.
fn decompress_modules(dir: &Path) -> Result<bool, VmError> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            fs::read_dir(&d).map_err(|e| VmError::io(format!("cannot list {}", d.display()), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".ko.xz") {
                found.push(path);
            }
        }
    }
    // A few hundred at a time keeps the command line short.
    for chunk in found.chunks(200) {
        let mut args: Vec<&std::ffi::OsStr> = vec!["-d".as_ref(), "-q".as_ref()];
        args.extend(chunk.iter().map(|p| p.as_os_str()));
        run_tool("xz", args, None, false)?;
    }
    // depmod indexes what it finds; a stale index would name the .ko.xz files.
    let _ = fs::remove_file(dir.join("modules.dep"));
    Ok(!found.is_empty())
}

/// The newest upload apt offers. apt-cache parses every package list on each call (1–4 s
/// here: Debian's container images keep no pkgcache), so the answer is remembered per
/// process and, on disk, until the package lists change (`apt-get update`).
fn newest_offered(series: Series, kernels: &Path) -> Result<Option<u32>, VmError> {
    static NEWEST_6_1: OnceLock<Option<u32>> = OnceLock::new();
    static NEWEST_6_12: OnceLock<Option<u32>> = OnceLock::new();
    let newest = match series {
        Series::V6_1 => &NEWEST_6_1,
        Series::V6_12 => &NEWEST_6_12,
    };
    if let Some(abi) = newest.get() {
        return Ok(*abi);
    }
    let memo_path = kernels.join(series.memo_name());
    let stamp = lists_stamp(Path::new(APT_LISTS));
    if let Some(stamp) = &stamp {
        let memo = fs::read_to_string(&memo_path).unwrap_or_default();
        if let Some(abi) = read_memo(&memo, stamp) {
            return Ok(*newest.get_or_init(|| Some(abi)));
        }
    }
    // A prefix listing is quicker than a regex search over all descriptions.
    let out = run_tool("apt-cache", ["pkgnames", series.prefix()], None, false)?;
    let abi = series.newest(&String::from_utf8_lossy(&out.stdout));
    if let (Some(stamp), Some(abi)) = (&stamp, abi) {
        // Best effort: a read-only cache only costs the next run another apt-cache.
        let _ = fs::create_dir_all(kernels).and_then(|()| {
            let tmp = tempfile::NamedTempFile::new_in(kernels)?;
            fs::write(tmp.path(), format!("{stamp} {abi}\n"))?;
            tmp.persist(&memo_path).map(|_| ()).map_err(|e| e.error)
        });
    }
    Ok(*newest.get_or_init(|| abi))
}

/// Where apt keeps its package lists.
const APT_LISTS: &str = "/var/lib/apt/lists";

/// A stamp that changes whenever apt's package lists do: the newest modification time
/// (ns) among the `*Packages*` files, and their count.
fn lists_stamp(dir: &Path) -> Option<String> {
    let mut newest = 0u128;
    let mut count = 0usize;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        if !entry.file_name().to_string_lossy().contains("_Packages") {
            continue;
        }
        let mtime = entry.metadata().ok()?.modified().ok()?;
        let ns = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        newest = newest.max(ns);
        count += 1;
    }
    (count > 0).then(|| format!("{newest}/{count}"))
}

/// The ABI remembered for `stamp` in a memo file's text (`STAMP ABI`).
fn read_memo(memo: &str, stamp: &str) -> Option<u32> {
    let (s, abi) = memo.trim().split_once(' ')?;
    (s == stamp).then(|| abi.parse().ok()).flatten()
}

fn newest_cached(series: Series, kernels: &Path) -> Option<u32> {
    fs::read_dir(kernels)
        .ok()?
        .flatten()
        .filter(|e| e.path().join(COMPLETE).exists())
        .filter_map(|e| series.number(&e.file_name().to_string_lossy()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_abi_is_numeric_not_lexical() {
        let out = "linux-image-6.1.0-9-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud\n\
                   linux-image-6.1.0-56-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud\n\
                   linux-image-6.1.0-47-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud\n\
                   linux-image-6.1.0-60-cloud-amd64 - signed, not wanted\n";
        assert_eq!(newest_abi(out), Some(56));
        let out = "linux-image-6.12.9+deb12-cloud-amd64-unsigned\n\
                   linux-image-6.12.118+deb12-cloud-amd64-unsigned\n\
                   linux-image-6.12.118+deb12-cloud-amd64\n\
                   linux-image-6.12.119+deb12-rt-amd64-unsigned\n\
                   linux-image-6.1.0-60-cloud-amd64-unsigned\n";
        assert_eq!(Series::V6_12.newest(out), Some(118));
        assert_eq!(Series::V6_1.newest(out), Some(60));
        assert_eq!(
            Series::V6_12.package(118),
            "linux-image-6.12.118+deb12-cloud-amd64-unsigned"
        );
        assert_eq!(newest_abi(""), None);
        assert_eq!(
            debian_package(56),
            "linux-image-6.1.0-56-cloud-amd64-unsigned"
        );
    }

    #[test]
    fn the_newest_abi_memo_is_only_valid_for_its_stamp() {
        assert_eq!(read_memo("123/3 56\n", "123/3"), Some(56));
        assert_eq!(read_memo("123/3 56\n", "124/3"), None);
        assert_eq!(read_memo("", "1/1"), None);
        assert_eq!(read_memo("123/3 x", "123/3"), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lists_stamp(dir.path()), None);
        fs::write(dir.path().join("deb_main_binary-amd64_Packages.lz4"), "x").unwrap();
        let a = lists_stamp(dir.path()).unwrap();
        assert!(a.ends_with("/1"), "{a}");
        fs::write(dir.path().join("sec_main_binary-amd64_Packages.lz4"), "y").unwrap();
        assert_ne!(lists_stamp(dir.path()).unwrap(), a);
    }

    #[test]
    fn kernel_source_parses_cli_forms() {
        assert_eq!(
            KernelSource::parse("debian"),
            Ok(KernelSource::Debian { abi: None })
        );
        assert_eq!(
            KernelSource::parse("debian:55"),
            Ok(KernelSource::Debian { abi: Some(55) })
        );
        assert!(KernelSource::parse("debian:x").is_err());
        assert_eq!(
            KernelSource::parse("debian:6.12"),
            Ok(KernelSource::Debian612 { point: None })
        );
        assert_eq!(
            KernelSource::parse("debian:6.12.118"),
            Ok(KernelSource::Debian612 { point: Some(118) })
        );
        assert!(KernelSource::parse("debian:6.12.x").is_err());
        // The plain number stays 6.1's ABI number.
        assert_eq!(
            KernelSource::parse("debian:6.1.0-57"),
            Ok(KernelSource::Debian { abi: Some(57) })
        );
        assert_eq!(
            KernelSource::parse("/k/bzImage"),
            Ok(KernelSource::Path {
                image: "/k/bzImage".into(),
                modules_dir: None
            })
        );
    }

    #[test]
    fn bzimage_header_checks() {
        let mut img = vec![0u8; 0x400];
        assert!(check_bzimage(&img).is_err());
        assert!(check_bzimage(&img[..0x100]).is_err());
        img[0x1FE] = 0x55;
        img[0x1FF] = 0xAA;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        assert!(check_bzimage(&img).is_ok());
        // kernel_version points (relative to 0x200) at a NUL-terminated string.
        img[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        img[0x300..0x310].copy_from_slice(b"6.1.0-56 (x) #1\0");
        assert_eq!(bzimage_version(&img).as_deref(), Some("6.1.0-56 (x) #1"));
    }
}
