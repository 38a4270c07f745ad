//! Zero cost when off: an app that depends on the recorder without the
//! `enabled` feature (or with `debug-only` in a release build) gets empty
//! handles and calls that compile to nothing. Built as a separate scratch
//! crate because this package's own tests turn the feature on.

use std::path::{Path, PathBuf};
use std::process::Command;

const MAIN: &str = r#"
use xskdbg_recorder::*;
fn main() {
    let rec = Recorder::new(RecorderConfig::new(SinkConfig::Memory { events: 16 }).policy(Policy::Log)).unwrap();
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    let p = u.pool(PoolConfig::new(SockKey::new(1, 5, 1))).unwrap();
    let s = p.socket(SockConfig::new(SockKey::new(1, 5, 1))).unwrap();
    let a = std::hint::black_box(0x800u64);
    p.fill(&[a]);
    // The seed's Fill -> Tx misuse: caught only when the checks are in.
    s.tx(&[XdpDesc::new(a, 60)]);
    println!(
        "enabled={} violations={} sizes={}",
        Recorder::ENABLED,
        rec.violations(),
        std::mem::size_of::<Recorder>() + std::mem::size_of::<Umem>()
            + std::mem::size_of::<Pool>() + std::mem::size_of::<Sock>()
    );
}
"#;

fn scratch(name: &str, dep: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nxskdbg-recorder = {{ path = {:?}, {dep} }}\n\n\
         # Its own workspace, wherever the target directory is.\n[workspace]\n",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();
    dir
}

fn run(dir: &Path, release: bool) -> (String, PathBuf) {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("off-build-target");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("run")
        .arg("-q")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target);
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = dir.file_name().unwrap();
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), bin)
}

/// Functions of the recorder's handles (`Recorder`, `Umem`, `Pool`, `Sock`)
/// left in the binary. (Setup-time configuration values may remain.)
fn recorder_symbols(bin: &Path) -> Vec<String> {
    let nm = Command::new("nm")
        .arg("-C")
        .arg(bin)
        .output()
        .expect("nm (binutils)");
    String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter(|l| {
            l.contains("xskdbg_recorder::")
                && ["::Recorder::", "::Umem::", "::Pool::", "::Sock::"]
                    .iter()
                    .any(|h| l.contains(h))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn without_the_feature_nothing_is_checked_and_nothing_is_kept() {
    let dir = scratch("xskdbg_off_app", "default-features = false");
    let (out, bin) = run(&dir, true);
    assert_eq!(out, "enabled=false violations=0 sizes=0");
    let syms = recorder_symbols(&bin);
    // Every call inlined to nothing: no handle method is left in the binary.
    assert!(syms.is_empty(), "recorder code in the off build: {syms:#?}");
}

#[test]
fn debug_only_checks_debug_builds_and_compiles_out_of_release() {
    let dir = scratch(
        "xskdbg_debug_only_app",
        "default-features = false, features = [\"debug-only\"]",
    );
    let (debug, debug_bin) = run(&dir, false);
    assert_eq!(
        debug.split(' ').take(2).collect::<Vec<_>>(),
        ["enabled=true", "violations=1"]
    );
    // The symbol check sees the checker when it is compiled in.
    let syms = recorder_symbols(&debug_bin);
    assert!(syms.iter().any(|s| s.contains("Pool::fill")), "{syms:#?}");
    let (release, bin) = run(&dir, true);
    assert_eq!(release, "enabled=false violations=0 sizes=0");
    assert!(recorder_symbols(&bin).is_empty());
}
