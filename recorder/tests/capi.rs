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
            p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                // With a cdylib among the crate types cargo drops the hash
                // from the staticlib's name too; older builds left hashed ones.
                f == "libxskdbg_recorder.a"
                    || (f.starts_with("libxskdbg_recorder-") && f.ends_with(".a"))
            })
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!(
            "no libxskdbg_recorder[-*].a in {}: the crate's staticlib is built with its tests",
            deps.display()
        )
    })
}

/// Compile and link one C test program against the header and the static
/// library, warnings as errors.
fn build_c(name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("xskdbg-capi-{name}"));
    let gcc = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest_dir().join("include"))
        .arg(manifest_dir().join(format!("tests/c/{name}.c")))
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
    out
}

#[test]
fn c_program_catches_the_seed_violation() {
    let out = build_c("violation");
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
fn c_program_records_libxdp_rings_and_names_its_mistakes() {
    // libxdp's ring structs and inline functions (<xdp/xsk.h>, libxdp-dev),
    // rings in the program's own memory: no socket, no root.
    let out = build_c("rings");
    let run = Command::new(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "C test failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("c-rings-ok"), "{stdout}");
    // The mistakes and their counts, as the program's user sees them.
    assert!(
        stderr
            .contains("xskdbg-recorder: 32 violations in all: not_recorded 32 (first 5 reported)"),
        "{stderr}"
    );
}

#[test]
fn c_config_sets_the_post_trigger_window() {
    let out = build_c("window");
    // The window under test is the config's, not one from the environment.
    let run = Command::new(&out)
        .env_remove("XSKDBG_POST_TRIGGER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C test failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("c-window-ok"), "{stdout}");
    // The header's struct is the library's: same size, same offsets of the
    // fields added last.
    use xskdbg_recorder::capi::xskdbg_config as Config;
    let layout = format!(
        "layout size={} set={} lines={} us={}",
        std::mem::size_of::<Config>(),
        std::mem::offset_of!(Config, post_trigger_set),
        std::mem::offset_of!(Config, post_trigger_lines),
        std::mem::offset_of!(Config, post_trigger_us),
    );
    assert!(stdout.contains(&layout), "C: {stdout}\nRust: {layout}");
    // The header's default is the Rust one.
    assert_eq!(
        (
            xskdbg_recorder::capi::XSKDBG_POST_TRIGGER_LINES,
            xskdbg_recorder::capi::XSKDBG_POST_TRIGGER_US
        ),
        (
            xskdbg_recorder::PostTrigger::DEFAULT.batches,
            xskdbg_recorder::PostTrigger::DEFAULT.micros
        )
    );
    let header = std::fs::read_to_string(manifest_dir().join("include/xskdbg.h")).unwrap();
    for (name, v) in [
        (
            "XSKDBG_POST_TRIGGER_LINES",
            xskdbg_recorder::PostTrigger::DEFAULT.batches.to_string(),
        ),
        (
            "XSKDBG_POST_TRIGGER_US",
            xskdbg_recorder::PostTrigger::DEFAULT.micros.to_string(),
        ),
    ] {
        assert!(
            header.contains(&format!("#define {name} {v}\n")),
            "include/xskdbg.h: {name} is not {v}"
        );
    }
}

/// The shared library built with this test binary (`deps/`; a cdylib's
/// name carries no hash).
fn shared_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().join("libxskdbg_recorder.so");
    assert!(
        so.exists(),
        "{} missing: the crate's cdylib is built with its tests",
        so.display()
    );
    so
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn installed_library_links_shared_and_static_through_pkg_config() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xskdbg-install");
    let _ = std::fs::remove_dir_all(&tmp);
    let built = tmp.join("built");
    std::fs::create_dir_all(&built).unwrap();
    std::fs::copy(static_lib(), built.join("libxskdbg_recorder.a")).unwrap();
    std::fs::copy(shared_lib(), built.join("libxskdbg_recorder.so")).unwrap();
    let prefix = tmp.join("prefix");
    run_ok(
        Command::new(manifest_dir().join("install.sh"))
            .arg("--from")
            .arg(&built)
            .arg("--prefix")
            .arg(&prefix),
    );
    let lib = prefix.join("lib");
    for f in [
        "libxskdbg_recorder.a",
        "libxskdbg_recorder.so",
        "libxskdbg_recorder.so.1",
    ] {
        assert!(lib.join(f).exists(), "{f} not installed");
    }
    assert!(prefix.join("include/xskdbg.h").exists());
    let pc = |args: &[&str]| {
        run_ok(
            Command::new("pkg-config")
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
                .args(args)
                .arg("xskdbg-recorder"),
        )
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let src = manifest_dir().join("tests/c/violation.c");

    // Shared: what `$(pkg-config --cflags --libs xskdbg-recorder)` gives.
    let shared = tmp.join("violation-shared");
    run_ok(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(&src)
            .args(pc(&["--cflags", "--libs"]))
            .arg("-o")
            .arg(&shared),
    );
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&shared));
    assert!(
        dynamic.contains("Shared library: [libxskdbg_recorder.so.1]"),
        "{dynamic}"
    );
    let out = run_ok(Command::new(&shared).env("LD_LIBRARY_PATH", &lib));
    assert!(out.contains("c-api-ok violations=1"), "{out}");

    // Static: the archive from pkg-config's libdir, its private libraries.
    let stat = tmp.join("violation-static");
    let libdir = pc(&["--variable=libdir"]).join("");
    let private: Vec<String> = pc(&["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-lxskdbg_recorder")
        .collect();
    run_ok(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(&src)
            .args(pc(&["--cflags"]))
            .arg(format!("{libdir}/libxskdbg_recorder.a"))
            .args(&private)
            .arg("-o")
            .arg(&stat),
    );
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&stat));
    assert!(!dynamic.contains("libxskdbg_recorder"), "{dynamic}");
    let out = run_ok(&mut Command::new(&stat));
    assert!(out.contains("c-api-ok violations=1"), "{out}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let header = std::fs::read_to_string(manifest_dir().join("include/xskdbg.h")).unwrap();
    // Every `xskdbg_name(` in the header is a function declaration, a
    // static inline wrapper (never exported), or an array call's macro
    // (`#define xskdbg_fill(`, over the exported function of that name).
    let mut declared = BTreeSet::new();
    let mut inline = BTreeSet::new();
    let mut rest = header.as_str();
    while let Some(i) = rest.find("xskdbg_") {
        let before = &rest[..i];
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if tail[end..].starts_with('(') {
            let line_start = before.rfind('\n').map_or(before, |n| &before[n + 1..]);
            if line_start.starts_with("static inline") {
                inline.insert(tail[..end].to_string());
            } else {
                declared.insert(tail[..end].to_string());
            }
        }
        rest = &tail[end..];
    }
    assert!(inline.contains("xskdbg_rx_ring"), "{inline:?}");
    for name in &inline {
        declared.remove(name);
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
    assert!(
        inline.is_disjoint(&exported),
        "static inline wrappers must not shadow exported functions"
    );
}
