//! Capture of the offending thread's user stack on a violation, symbolized
//! with blazesym (feature `stacks`). Without the feature it captures nothing.

/// Frames kept.
#[cfg(feature = "stacks")]
const MAX_FRAMES: usize = 48;

#[cfg(feature = "stacks")]
extern "C" {
    // glibc's backtrace(3): walks the calling thread's stack.
    fn backtrace(buffer: *mut *mut std::ffi::c_void, size: std::ffi::c_int) -> std::ffi::c_int;
}

/// The calling thread's stack as `function+0xoff (file:line)` strings,
/// innermost first; empty without feature `stacks`.
#[cfg(feature = "stacks")]
pub fn capture() -> Vec<String> {
    use blazesym::symbolize::source::{Process, Source};
    use blazesym::symbolize::{Input, Symbolized, Symbolizer};

    let mut ips = [std::ptr::null_mut::<std::ffi::c_void>(); MAX_FRAMES];
    // SAFETY: `ips` has room for MAX_FRAMES pointers.
    let n = unsafe { backtrace(ips.as_mut_ptr(), MAX_FRAMES as std::ffi::c_int) };
    let addrs: Vec<u64> = ips[..n.max(0) as usize].iter().map(|p| *p as u64).collect();
    let src = Source::Process(Process::new(blazesym::Pid::Slf));
    let sym = Symbolizer::new();
    let syms = match sym.symbolize(&src, Input::AbsAddr(&addrs)) {
        Ok(s) => s,
        Err(e) => return vec![format!("<stack not symbolized: {e}>")],
    };
    addrs
        .iter()
        .zip(syms.iter())
        // Skip the recorder's own frames: the app's frames are what matter.
        .filter(|(_, s)| match s {
            Symbolized::Sym(s) => !s.name.contains("xskdbg_recorder::"),
            Symbolized::Unknown(_) => true,
        })
        .map(|(ip, s)| match s {
            Symbolized::Sym(s) => {
                let loc = s
                    .code_info
                    .as_ref()
                    .map(|c| {
                        format!(
                            " ({}:{})",
                            c.to_path().display(),
                            c.line.map_or(String::from("?"), |l| l.to_string())
                        )
                    })
                    .unwrap_or_default();
                format!("{:x} {}+{:#x}{loc}", ip, s.name, s.offset)
            }
            Symbolized::Unknown(r) => format!("{ip:x} <unknown: {r}>"),
        })
        .collect()
}

/// Without feature `stacks`: nothing.
#[cfg(not(feature = "stacks"))]
pub fn capture() -> Vec<String> {
    Vec::new()
}
