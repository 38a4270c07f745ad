//! The C API: compile `tests/c/violation.c` with gcc against
//! `include/xskdbg.h`, link the static library, run it; and check the
//! hand-written header declares exactly the functions the library exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `libxskdbg_recorder.a` built with this test binary: cargo writes the
/// crate's staticlib into `deps/` with the rlib (it copies it up to the
/// profile directory only for `cargo build`), so take the newest one.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let newest = std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("libxskdbg_recorder-") && f.ends_with(".a"))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!(
            "no libxskdbg_recorder-*.a in {}: the crate's staticlib is built with its tests",
            deps.display()
        )
    })
}

#[test]
fn c_program_catches_the_seed_violation() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xskdbg-capi-violation");
    let gcc = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest_dir().join("include"))
        .arg(manifest_dir().join("tests/c/violation.c"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .output()
        .expect("gcc must be installed (apt-get install gcc)");
    assert!(
        gcc.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let run = Command::new(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C test failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("c-api-ok violations=1"), "{stdout}");
    assert!(stdout.contains("tracing_mark_write: xskdbg:1 violation kind=invalid_transition"));
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let header = std::fs::read_to_string(manifest_dir().join("include/xskdbg.h")).unwrap();
    // Every `xskdbg_name(` in the header is a function declaration.
    let mut declared = BTreeSet::new();
    let mut rest = header.as_str();
    while let Some(i) = rest.find("xskdbg_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if tail[end..].starts_with('(') {
            declared.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    let nm = Command::new("nm")
        .args(["--defined-only", "-g"])
        .arg(static_lib())
        .output()
        .expect("nm (binutils) must be installed");
    assert!(nm.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_addr, kind, name) = (it.next()?, it.next()?, it.next()?);
            (kind == "T" && name.starts_with("xskdbg_")).then(|| name.to_string())
        })
        .collect();
    assert!(!exported.is_empty());
    assert_eq!(declared, exported, "include/xskdbg.h is out of date");
}
