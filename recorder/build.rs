//! Decides whether the checks are compiled in: cfg `xskdbg_on` is set when
//! feature `enabled` is on, unless feature `debug-only` asks for builds with
//! debug assertions only and this build has none. Names the shared library
//! of the C API (`SONAME`), so programs linked with `-lxskdbg_recorder` load
//! `libxskdbg_recorder.so.1` (recorder/install.sh makes the links).

/// The C API's shared library name; the number changes when its ABI does.
const SONAME: &str = "libxskdbg_recorder.so.1";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xskdbg_on)");
    println!("cargo::rerun-if-changed=build.rs");
    let enabled = std::env::var_os("CARGO_FEATURE_ENABLED").is_some();
    let debug_only = std::env::var_os("CARGO_FEATURE_DEBUG_ONLY").is_some();
    let debug_assertions = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some();
    println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    if enabled && (!debug_only || debug_assertions) {
        println!("cargo::rustc-cfg=xskdbg_on");
    }
}
