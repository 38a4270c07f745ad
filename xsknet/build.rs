//! Compiles the XDP redirect program and generates its libbpf-rs skeleton
//! into `OUT_DIR` (generated files are never committed).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/redirect.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The program only needs the UAPI <linux/bpf.h>; Debian keeps <asm/*.h>
    // under the multiarch directory, which clang's BPF target does not search.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let mut builder = SkeletonBuilder::new();
    builder
        .source(SRC)
        .clang_args(["-I", multiarch.as_str(), "-O2", "-g", "-Wall"]);
    if let Err(e) = builder.build_and_generate(out.join("redirect.skel.rs")) {
        panic!(
            "building {SRC} failed: {e:#}\n(install clang and linux-libc-dev: scripts/setup.sh)"
        );
    }
    println!("cargo:rerun-if-changed={SRC}");
}
