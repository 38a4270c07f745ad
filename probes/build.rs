//! Generates `vmlinux.h` from the build machine's kernel BTF with bpftool,
//! compiles the BPF programs against it (CO-RE: the objects relocate to the
//! running kernel's layout at load time) and writes libbpf-rs skeletons into
//! `OUT_DIR`. Nothing generated is ever committed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

/// The BPF objects: (source, skeleton file).
const PROGS: &[(&str, &str)] = &[
    ("src/bpf/tracepoint.bpf.c", "tracepoint.skel.rs"),
    ("src/bpf/fentry.bpf.c", "fentry.skel.rs"),
    ("src/bpf/kprobe.bpf.c", "kprobe.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let btf = env::var("XSKDBG_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    println!("cargo:rerun-if-env-changed=XSKDBG_VMLINUX_BTF");
    gen_vmlinux_h(Path::new(&btf), &out.join("vmlinux.h"));

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let define = format!("-D__TARGET_ARCH_{target_arch}");
    let inc = out.display().to_string();
    for (src, skel) in PROGS {
        let mut b = SkeletonBuilder::new();
        b.source(src).clang_args([
            "-I",
            inc.as_str(),
            "-I",
            "src/bpf",
            define.as_str(),
            "-O2",
            "-g",
            "-Wall",
        ]);
        if let Err(e) = b.build_and_generate(out.join(skel)) {
            panic!("building {src} failed: {e:#}\n(install clang and libbpf headers: scripts/setup.sh)");
        }
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/xskdbg.h");
    println!("cargo:rerun-if-changed=src/bpf/kfunc.h");
}

/// `bpftool btf dump file <btf> format c > vmlinux.h`, written atomically.
fn gen_vmlinux_h(btf: &Path, dst: &Path) {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(btf)
        .args(["format", "c"])
        .output()
        .unwrap_or_else(|e| {
            panic!("running bpftool failed: {e} (install bpftool: scripts/setup.sh)")
        });
    if !out.status.success() || out.stdout.is_empty() {
        panic!(
            "bpftool btf dump file {} failed: {}\n(the kernel needs CONFIG_DEBUG_INFO_BTF; or point XSKDBG_VMLINUX_BTF at a BTF file)",
            btf.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tmp = dst.with_extension("h.tmp");
    std::fs::write(&tmp, &out.stdout).expect("write vmlinux.h.tmp in OUT_DIR");
    std::fs::rename(&tmp, dst).expect("rename vmlinux.h in OUT_DIR");
    println!("cargo:rerun-if-changed={}", btf.display());
}
