//! The C API (`include/xskdbg.h`), for libxdp applications; built into the
//! static library `libxskdbg_recorder.a`.
//!
//! Handles are opaque boxes. Functions taking a handle accept NULL and then
//! do nothing (or return -1). Setup functions return 0 or -1 with the reason
//! in [`xskdbg_last_error`]. A violation never unwinds into C: the "panic"
//! policy prints the violation and aborts.

#![allow(non_camel_case_types, reason = "the C header's names")]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

use crate::types::{
    AddrMode, Policy, PoolConfig, PostTrigger, RecorderConfig, SinkConfig, SockConfig, SockKey,
    UmemConfig, Violation, XdpDesc,
};
use crate::{Pool, Recorder, Sock, Umem};

/// `XSKDBG_SINK_NULL`.
pub const XSKDBG_SINK_NULL: c_int = 0;
/// `XSKDBG_SINK_MEMORY`.
pub const XSKDBG_SINK_MEMORY: c_int = 1;
/// `XSKDBG_SINK_TRACE_MARKER`.
pub const XSKDBG_SINK_TRACE_MARKER: c_int = 2;
/// `XSKDBG_POLICY_ABORT`.
pub const XSKDBG_POLICY_ABORT: c_int = 0;
/// `XSKDBG_POLICY_LOG`.
pub const XSKDBG_POLICY_LOG: c_int = 1;
/// `XSKDBG_POLICY_CALLBACK`.
pub const XSKDBG_POLICY_CALLBACK: c_int = 2;

/// `struct xskdbg_violation`: valid only during the callback.
#[repr(C)]
#[derive(Debug)]
pub struct xskdbg_violation {
    /// Finding kind, e.g. `"fifo_order"`.
    pub kind: *const c_char,
    /// Raw descriptor address.
    pub addr: u64,
    /// Frame (chunk base or low 48 bits).
    pub frame: u64,
    /// State before (`"fill"`, `"rx"`, ...).
    pub from: *const c_char,
    /// State asked for.
    pub to: *const c_char,
    /// FIFO head expected instead (when `has_expected`).
    pub expected: u64,
    /// Whether `expected` is set.
    pub has_expected: c_int,
    /// The whole `violation` line as written.
    pub line: *const c_char,
}

/// `xskdbg_violation_cb`.
pub type xskdbg_violation_cb = Option<unsafe extern "C" fn(*const xskdbg_violation, *mut c_void)>;

/// `struct xskdbg_config`.
#[repr(C)]
#[derive(Debug)]
pub struct xskdbg_config {
    /// `XSKDBG_SINK_*`.
    pub sink: c_int,
    /// For the trace_marker sink: instance name, NULL for the top-level buffer.
    pub instance: *const c_char,
    /// For the memory sink: lines kept (0: 4096).
    pub memory_events: u32,
    /// `XSKDBG_POLICY_*`.
    pub policy: c_int,
    /// For `XSKDBG_POLICY_CALLBACK`.
    pub callback: xskdbg_violation_cb,
    /// Passed to `callback`.
    pub user: *mut c_void,
    /// Non-zero: do not freeze the buffer on the first violation.
    pub no_freeze: c_int,
    /// Non-zero: turn the buffer back on when it is found frozen
    /// (`tracing_on` = 0, left so by an earlier run's violation).
    pub rearm: c_int,
    /// Non-zero: `post_trigger_lines` and `post_trigger_us` are the
    /// post-trigger window; zero: [`PostTrigger::DEFAULT`], so that a
    /// zeroed config gets the same window as Rust's default.
    pub post_trigger_set: c_int,
    /// Lines written after the first violation before the freeze.
    pub post_trigger_lines: u32,
    /// Microseconds after the first violation before the freeze.
    pub post_trigger_us: u64,
}

/// `XSKDBG_POST_TRIGGER_LINES`: the default window's lines.
pub const XSKDBG_POST_TRIGGER_LINES: u32 = PostTrigger::DEFAULT.batches;
/// `XSKDBG_POST_TRIGGER_US`: the default window's microseconds.
pub const XSKDBG_POST_TRIGGER_US: u64 = PostTrigger::DEFAULT.micros;

/// `struct xskdbg_key`: what `sk=` is made of.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct xskdbg_key {
    /// `SO_NETNS_COOKIE` of the socket.
    pub netns_cookie: u64,
    /// Interface index inside that namespace.
    pub ifindex: u32,
    /// Queue id.
    pub queue_id: u32,
}

/// Opaque recorder handle.
#[derive(Debug)]
pub struct xskdbg_recorder(Recorder);
/// Opaque UMEM handle.
#[derive(Debug)]
pub struct xskdbg_umem(Umem);
/// Opaque pool handle.
#[derive(Debug)]
pub struct xskdbg_pool(Pool);
/// Opaque socket handle.
#[derive(Debug)]
pub struct xskdbg_sock(Sock);

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: impl std::fmt::Display) -> c_int {
    let s = CString::new(msg.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = s);
    -1
}

/// The last setup error of the calling thread ("" if none). Valid until the
/// thread's next failing call.
#[no_mangle]
pub extern "C" fn xskdbg_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Whether the library was built with the checks compiled in (1) or not (0).
#[no_mangle]
pub extern "C" fn xskdbg_enabled() -> c_int {
    c_int::from(Recorder::ENABLED)
}

struct CCallback {
    f: unsafe extern "C" fn(*const xskdbg_violation, *mut c_void),
    user: usize,
}

fn call_c(cb: &CCallback, v: &Violation) {
    let kind = CString::new(v.kind.as_str()).unwrap_or_default();
    let from = CString::new(v.from.as_str()).unwrap_or_default();
    let to = CString::new(v.to.as_str()).unwrap_or_default();
    let line = CString::new(v.line.replace('\0', " ")).unwrap_or_default();
    let cv = xskdbg_violation {
        kind: kind.as_ptr(),
        addr: v.addr,
        frame: v.frame,
        from: from.as_ptr(),
        to: to.as_ptr(),
        expected: v.expected.unwrap_or(0),
        has_expected: c_int::from(v.expected.is_some()),
        line: line.as_ptr(),
    };
    // SAFETY: the C caller registered `f` to be called with this struct and
    // its `user` pointer; the strings live until the call returns.
    unsafe { (cb.f)(&cv, cb.user as *mut c_void) };
}

/// Create a recorder. Returns 0 and sets `*out`, or -1 (see `xskdbg_last_error`).
///
/// # Safety
/// `cfg` and `out` must be valid pointers; `cfg->instance` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_recorder_new(
    cfg: *const xskdbg_config,
    out: *mut *mut xskdbg_recorder,
) -> c_int {
    if cfg.is_null() || out.is_null() {
        return set_error("xskdbg_recorder_new: NULL argument");
    }
    // SAFETY: checked non-NULL; the caller passes a valid config.
    let c = unsafe { &*cfg };
    let sink = match c.sink {
        XSKDBG_SINK_NULL => SinkConfig::Null,
        XSKDBG_SINK_MEMORY => SinkConfig::Memory {
            events: if c.memory_events == 0 {
                4096
            } else {
                c.memory_events as usize
            },
        },
        XSKDBG_SINK_TRACE_MARKER => SinkConfig::TraceMarker {
            instance: if c.instance.is_null() {
                None
            } else {
                // SAFETY: non-NULL C string from the caller.
                Some(
                    unsafe { CStr::from_ptr(c.instance) }
                        .to_string_lossy()
                        .into_owned(),
                )
            },
        },
        other => return set_error(format!("xskdbg_recorder_new: unknown sink {other}")),
    };
    let policy = match c.policy {
        XSKDBG_POLICY_ABORT => Policy::Callback(Arc::new(|v: &Violation| {
            eprintln!("xskdbg: {v}");
            std::process::abort();
        })),
        XSKDBG_POLICY_LOG => Policy::Log,
        XSKDBG_POLICY_CALLBACK => match c.callback {
            Some(f) => {
                let cb = CCallback {
                    f,
                    user: c.user as usize,
                };
                Policy::Callback(Arc::new(move |v: &Violation| call_c(&cb, v)))
            }
            None => {
                return set_error("xskdbg_recorder_new: XSKDBG_POLICY_CALLBACK without callback")
            }
        },
        other => return set_error(format!("xskdbg_recorder_new: unknown policy {other}")),
    };
    let post_trigger = if c.post_trigger_set != 0 {
        PostTrigger {
            batches: c.post_trigger_lines,
            micros: c.post_trigger_us,
        }
    } else {
        PostTrigger::DEFAULT
    };
    let cfg = RecorderConfig {
        post_trigger,
        sink,
        policy,
        freeze: c.no_freeze == 0,
        rearm: c.rearm != 0,
        ..RecorderConfig::default()
    };
    // XSKDBG_POLICY_ABORT ends the program at the violation: no window.
    match Recorder::open(cfg, c.policy == XSKDBG_POLICY_ABORT) {
        Ok(r) => {
            // SAFETY: `out` checked non-NULL.
            unsafe { *out = Box::into_raw(Box::new(xskdbg_recorder(r))) };
            0
        }
        Err(e) => set_error(e),
    }
}

/// Free a recorder (the UMEM, pool and socket handles keep working); prints
/// the counts of violations that were only counted, if any.
///
/// # Safety
/// `r` NULL or from `xskdbg_recorder_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_recorder_free(r: *mut xskdbg_recorder) {
    if !r.is_null() {
        // SAFETY: from Box::into_raw in xskdbg_recorder_new.
        let r = unsafe { Box::from_raw(r) };
        r.0.print_summary();
        drop(r);
    }
}

/// The socket key of an AF_XDP socket: its network namespace cookie
/// (`SO_NETNS_COOKIE`, Linux 5.14+) with `ifindex` and `queue_id`.
///
/// # Safety
/// `out` valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_sock_key(
    fd: c_int,
    ifindex: u32,
    queue_id: u32,
    out: *mut xskdbg_key,
) -> c_int {
    if out.is_null() {
        return set_error("xskdbg_sock_key: NULL argument");
    }
    match crate::sys::netns_cookie(fd) {
        Ok(netns_cookie) => {
            // SAFETY: `out` checked non-NULL.
            unsafe {
                *out = xskdbg_key {
                    netns_cookie,
                    ifindex,
                    queue_id,
                }
            };
            0
        }
        Err(e) => set_error(format!(
            "xskdbg_sock_key: getsockopt(fd {fd}, SO_NETNS_COOKIE) failed: {e} (needs Linux 5.14+ and a socket fd)"
        )),
    }
}

/// Register a UMEM of `size` bytes in chunks of `chunk_size`.
///
/// # Safety
/// `r` NULL or valid; `out` valid.
#[no_mangle]
#[allow(clippy::too_many_arguments, reason = "a flat C signature")]
pub unsafe extern "C" fn xskdbg_umem_new(
    r: *const xskdbg_recorder,
    size: u64,
    chunk_size: u32,
    unaligned: c_int,
    headroom: u32,
    has_poison: c_int,
    poison: u64,
    out: *mut *mut xskdbg_umem,
) -> c_int {
    if r.is_null() || out.is_null() {
        return set_error("xskdbg_umem_new: NULL argument");
    }
    let cfg = UmemConfig {
        size,
        chunk_size,
        mode: if unaligned != 0 {
            AddrMode::Unaligned
        } else {
            AddrMode::Aligned
        },
        headroom,
        poison: (has_poison != 0).then_some(poison),
    };
    // SAFETY: checked non-NULL, valid by contract.
    match unsafe { &*r }.0.umem(cfg) {
        Ok(u) => {
            // SAFETY: `out` checked non-NULL.
            unsafe { *out = Box::into_raw(Box::new(xskdbg_umem(u))) };
            0
        }
        Err(e) => set_error(e),
    }
}

/// Free a UMEM handle.
///
/// # Safety
/// NULL or from `xskdbg_umem_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_umem_free(u: *mut xskdbg_umem) {
    if !u.is_null() {
        // SAFETY: from Box::into_raw.
        drop(unsafe { Box::from_raw(u) });
    }
}

/// Register the buffer pool (FILL + COMPLETION) bound to a device queue.
///
/// # Safety
/// `u` NULL or valid; `out` valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_pool_new(
    u: *const xskdbg_umem,
    netns_cookie: u64,
    ifindex: u32,
    queue_id: u32,
    fill_size: u32,
    comp_size: u32,
    out: *mut *mut xskdbg_pool,
) -> c_int {
    if u.is_null() || out.is_null() {
        return set_error("xskdbg_pool_new: NULL argument");
    }
    let cfg = PoolConfig {
        key: SockKey::new(netns_cookie, ifindex, queue_id),
        fill_size,
        comp_size,
    };
    // SAFETY: checked non-NULL.
    match unsafe { &*u }.0.pool(cfg) {
        Ok(p) => {
            // SAFETY: `out` checked non-NULL.
            unsafe { *out = Box::into_raw(Box::new(xskdbg_pool(p))) };
            0
        }
        Err(e) => set_error(e),
    }
}

/// Free a pool handle.
///
/// # Safety
/// NULL or from `xskdbg_pool_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_pool_free(p: *mut xskdbg_pool) {
    if !p.is_null() {
        // SAFETY: from Box::into_raw.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Register a socket on a pool. `fd` (or -1) gives `XDP_STATISTICS`;
/// `label` may be NULL.
///
/// # Safety
/// `p` NULL or valid; `label` NULL or a C string; `out` valid.
#[no_mangle]
#[allow(clippy::too_many_arguments, reason = "a flat C signature")]
pub unsafe extern "C" fn xskdbg_sock_new(
    p: *const xskdbg_pool,
    netns_cookie: u64,
    ifindex: u32,
    queue_id: u32,
    fd: c_int,
    label: *const c_char,
    rx_size: u32,
    tx_size: u32,
    out: *mut *mut xskdbg_sock,
) -> c_int {
    if p.is_null() || out.is_null() {
        return set_error("xskdbg_sock_new: NULL argument");
    }
    let mut cfg = SockConfig::new(SockKey::new(netns_cookie, ifindex, queue_id));
    cfg.rx_size = rx_size;
    cfg.tx_size = tx_size;
    if fd >= 0 {
        cfg.fd = Some(fd);
    }
    if !label.is_null() {
        // SAFETY: non-NULL C string from the caller.
        cfg.label = Some(
            unsafe { CStr::from_ptr(label) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    // SAFETY: checked non-NULL.
    match unsafe { &*p }.0.socket(cfg) {
        Ok(s) => {
            // SAFETY: `out` checked non-NULL.
            unsafe { *out = Box::into_raw(Box::new(xskdbg_sock(s))) };
            0
        }
        Err(e) => set_error(e),
    }
}

/// Free a socket handle.
///
/// # Safety
/// NULL or from `xskdbg_sock_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_sock_free(s: *mut xskdbg_sock) {
    if !s.is_null() {
        // SAFETY: from Box::into_raw.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// # Safety
/// `p` is NULL or `n` readable elements.
unsafe fn slice<'a, T>(p: *const T, n: u32) -> &'a [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: by the caller's contract.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }
}

/// The app put `n` frames on the pool's FILL ring, in this order.
///
/// # Safety
/// `p` NULL or valid; `addrs` NULL or `n` readable values.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_fill(p: *const xskdbg_pool, addrs: *const u64, n: u32) {
    if p.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*p).0.fill(slice(addrs, n)) }
}

/// The app read `n` frames from the pool's COMPLETION ring, in this order.
///
/// # Safety
/// `p` NULL or valid; `addrs` NULL or `n` readable values.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_comp(p: *const xskdbg_pool, addrs: *const u64, n: u32) {
    if p.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*p).0.comp(slice(addrs, n)) }
}

/// The app read `n` descriptors from RX, the first at consumer index `idx`.
///
/// # Safety
/// `s` NULL or valid; `descs` NULL or `n` readable `struct xdp_desc`.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_rx(s: *const xskdbg_sock, idx: u32, descs: *const XdpDesc, n: u32) {
    if s.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*s).0.rx_at(idx, slice(descs, n)) }
}

/// The app put `n` descriptors on TX, the first at producer index `idx`.
///
/// # Safety
/// `s` NULL or valid; `descs` NULL or `n` readable `struct xdp_desc`.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_tx(s: *const xskdbg_sock, idx: u32, descs: *const XdpDesc, n: u32) {
    if s.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*s).0.tx_at(idx, slice(descs, n)) }
}

/// The two contiguous runs a ring range `idx .. idx + n` covers in a ring of
/// `mask + 1` entries: before and after the wrap. `n` is cut to one ring.
fn runs(mask: u32, idx: u32, n: u32) -> [(usize, usize); 2] {
    if mask & mask.wrapping_add(1) != 0 {
        bad_mask(mask);
    }
    let size = u64::from(mask) + 1;
    let n = u64::from(n).min(size);
    let first = u64::from(idx & mask);
    let a = n.min(size - first);
    [(first as usize, a as usize), (0, (n - a) as usize)]
}

#[cold]
fn bad_mask(mask: u32) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "xskdbg: ring mask {mask:#x} is not a ring size minus one: pass the ring's mask (libxdp: ring->mask), not its size"
        );
    }
}

/// # Safety
/// `ring` holds `mask + 1` entries of `T`.
unsafe fn run<'a, T>(ring: *const T, r: (usize, usize)) -> &'a [T] {
    // SAFETY: by the caller's contract, r lies inside the ring.
    unsafe { std::slice::from_raw_parts(ring.add(r.0), r.1) }
}

/// FILL through the ring itself: the app wrote `n` addresses at producer
/// index `idx` (free-running) of a FILL ring of `mask + 1` entries, wrap
/// included.
///
/// # Safety
/// `p` NULL or valid; `ring` NULL or the mapped ring's address array; the
/// entries `idx .. idx + n` written by the caller.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_fill_masked(
    p: *const xskdbg_pool,
    ring: *const c_void,
    mask: u32,
    idx: u32,
    n: u32,
) {
    if p.is_null() || ring.is_null() || n == 0 {
        return;
    }
    let ring = ring.cast::<u64>();
    let [a, b] = runs(mask, idx, n);
    // SAFETY: by contract.
    unsafe {
        (*p).0.fill_at(idx, run(ring, a));
        if b.1 > 0 {
            (*p).0.fill_at(idx.wrapping_add(a.1 as u32), run(ring, b));
        }
    }
}

/// COMPLETION through the ring itself: `n` addresses at consumer index
/// `idx` (free-running) of a ring of `mask + 1` entries, wrap included.
///
/// # Safety
/// As for [`xskdbg_fill_masked`]; the entries were published by the kernel.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_comp_masked(
    p: *const xskdbg_pool,
    ring: *const c_void,
    mask: u32,
    idx: u32,
    n: u32,
) {
    if p.is_null() || ring.is_null() || n == 0 {
        return;
    }
    let ring = ring.cast::<u64>();
    let [a, b] = runs(mask, idx, n);
    // SAFETY: by contract.
    unsafe {
        (*p).0.comp_at(idx, run(ring, a));
        if b.1 > 0 {
            (*p).0.comp_at(idx.wrapping_add(a.1 as u32), run(ring, b));
        }
    }
}

/// RX through the ring itself: `n` descriptors at consumer index `idx`
/// (free-running) of a ring of `mask + 1` entries, wrap included, with the
/// producer index `prod` the app saw when it peeked.
///
/// # Safety
/// `s` NULL or valid; `ring` NULL or the mapped ring's descriptor array; the
/// entries `idx .. idx + n` published by the kernel.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_rx_masked(
    s: *const xskdbg_sock,
    ring: *const c_void,
    mask: u32,
    idx: u32,
    n: u32,
    prod: u32,
) {
    if s.is_null() || ring.is_null() || n == 0 {
        return;
    }
    let ring = ring.cast::<XdpDesc>();
    let [a, b] = runs(mask, idx, n);
    // SAFETY: by contract.
    unsafe {
        (*s).0.rx_at_prod(idx, prod, run(ring, a));
        if b.1 > 0 {
            (*s).0
                .rx_at_prod(idx.wrapping_add(a.1 as u32), prod, run(ring, b));
        }
    }
}

/// TX through the ring itself: `n` descriptors at producer index `idx`
/// (free-running) of a ring of `mask + 1` entries, wrap included.
///
/// # Safety
/// As for [`xskdbg_rx_masked`]; the entries written by the caller.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_tx_masked(
    s: *const xskdbg_sock,
    ring: *const c_void,
    mask: u32,
    idx: u32,
    n: u32,
) {
    if s.is_null() || ring.is_null() || n == 0 {
        return;
    }
    let ring = ring.cast::<XdpDesc>();
    let [a, b] = runs(mask, idx, n);
    // SAFETY: by contract.
    unsafe {
        (*s).0.tx_at(idx, run(ring, a));
        if b.1 > 0 {
            (*s).0.tx_at(idx.wrapping_add(a.1 as u32), run(ring, b));
        }
    }
}

/// RX from a copy, with the producer index the app saw (`prod=`).
///
/// # Safety
/// `s` NULL or valid; `descs` NULL or `n` readable `struct xdp_desc`.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_rx_prod(
    s: *const xskdbg_sock,
    idx: u32,
    prod: u32,
    descs: *const XdpDesc,
    n: u32,
) {
    if s.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*s).0.rx_at_prod(idx, prod, slice(descs, n)) }
}

/// Before the first FILL of the socket's pool: write the UMEM's poison value
/// into every slot of its RX ring (`mask + 1` descriptors) and declare it
/// (`rxpoison`), so an all-zero descriptor read later is known to come from
/// outside the ring. Returns 0, or -1 (see `xskdbg_last_error`) when frames
/// were already filled or the UMEM has no poison value.
///
/// # Safety
/// `s` NULL or valid; `ring` the mapped RX ring's descriptor array.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_rx_prepoison_masked(
    s: *const xskdbg_sock,
    ring: *mut c_void,
    mask: u32,
) -> c_int {
    if s.is_null() || ring.is_null() {
        return set_error("xskdbg_rx_prepoison_masked: NULL argument");
    }
    // SAFETY: checked non-NULL, valid by contract.
    let sock = unsafe { &(*s).0 };
    let Some(poison) = sock.poison() else {
        return set_error(
            "xskdbg_rx_prepoison_masked: the UMEM has no poison value (xskdbg_umem_new has_poison)",
        );
    };
    if let Err(e) = sock.declare_rx_poisoned() {
        return set_error(format!("xskdbg_rx_prepoison_masked: {e}"));
    }
    // SAFETY: the whole ring belongs to the app: nothing is on FILL yet.
    unsafe {
        crate::sys::poison_rx_slots(
            ring.cast::<XdpDesc>(),
            mask,
            0,
            mask.wrapping_add(1),
            poison,
        )
    };
    0
}

/// Whether the buffer is frozen: by a violation, or found so at start
/// (then nothing this run checks is written; see `rearm`).
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_is_frozen(r: *const xskdbg_recorder) -> c_int {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    c_int::from(unsafe { (*r).0.is_frozen() })
}

/// Ends the recording (`Recorder::end`): call it after the last line that
/// belongs in the trace, before the buffer is turned off to be read; later
/// ring operations are checked but not written, and no "stopped recording"
/// warning follows. NULL: nothing.
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_end(r: *const xskdbg_recorder) {
    if r.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.end() }
}

/// TX descriptors the kernel refuses to send (`Recorder::tx_rejected`):
/// left out of the frames' histories instead of counted as sends.
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_tx_rejected(r: *const xskdbg_recorder) -> u64 {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.tx_rejected() }
}

/// Sink writes that failed (other than because the buffer was frozen).
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_sink_errors(r: *const xskdbg_recorder) -> u64 {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.sink_errors() }
}

/// Write an `audit` line per UMEM (the frames the application holds, since
/// when); returns how many frames it holds. Call before freezing and
/// reading the trace.
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_audit(r: *const xskdbg_recorder) -> u64 {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.audit() }
}

/// The app took `n` frames from its own free list.
///
/// # Safety
/// `u` NULL or valid; `addrs` NULL or `n` readable values.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_hold(u: *const xskdbg_umem, addrs: *const u64, n: u32) {
    if u.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*u).0.hold(slice(addrs, n)) }
}

/// The app returned `n` frames to its own free list.
///
/// # Safety
/// `u` NULL or valid; `addrs` NULL or `n` readable values.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_release(u: *const xskdbg_umem, addrs: *const u64, n: u32) {
    if u.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { (*u).0.free(slice(addrs, n)) }
}

/// Violations seen so far.
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_violations(r: *const xskdbg_recorder) -> u64 {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.violations() }
}

/// FILL→RX mismatches explained as free-list recycling.
///
/// # Safety
/// `r` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_recycled(r: *const xskdbg_recorder) -> u64 {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    unsafe { (*r).0.recycled() }
}

/// Copy the memory ring (as an ftrace trace text) into `buf`, NUL-terminated
/// and cut to `len - 1` bytes; returns the full length.
///
/// # Safety
/// `r` NULL or valid; `buf` NULL or `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_dump(
    r: *const xskdbg_recorder,
    buf: *mut c_char,
    len: usize,
) -> usize {
    if r.is_null() {
        return 0;
    }
    // SAFETY: by contract.
    let d = unsafe { (*r).0.dump() };
    if !buf.is_null() && len > 0 {
        let n = d.len().min(len - 1);
        // SAFETY: `buf` has `len` writable bytes; we write `n + 1 <= len`.
        unsafe {
            std::ptr::copy_nonoverlapping(d.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    d.len()
}

/// Write `poison` into the addresses of RX slots `first .. first + n`
/// (consumer counter, unmasked) of a mapped ring of `mask + 1` entries:
/// call after reading them, before `xsk_ring_cons__release`.
///
/// # Safety
/// `ring` is the descriptor array of a mapped RX ring with `mask + 1`
/// entries, and the slots are owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn xskdbg_poison_rx(
    ring: *mut XdpDesc,
    mask: u32,
    first: u32,
    n: u32,
    poison: u64,
) {
    if ring.is_null() {
        return;
    }
    // SAFETY: by contract.
    unsafe { crate::sys::poison_rx_slots(ring, mask, first, n, poison) }
}
