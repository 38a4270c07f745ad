//! Per-thread state of the hot path: a small thread number for frame words,
//! the kernel thread id for the memory sink, and the buffer lines are
//! formatted in (so the hot path does not allocate).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::line::LineBuf;
use crate::sys;

static NEXT_TID: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static SMALL_TID: Cell<u16> = const { Cell::new(0) };
    static OS_TID: Cell<u32> = const { Cell::new(0) };
    static LINE: RefCell<LineBuf> = const { RefCell::new(LineBuf::new()) };
}

/// A small number for the calling thread (never 0), stored in frame words.
#[inline]
pub(crate) fn small_tid() -> u16 {
    SMALL_TID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let mut n = NEXT_TID.fetch_add(1, Ordering::Relaxed) as u16;
        if n == 0 {
            n = NEXT_TID.fetch_add(1, Ordering::Relaxed) as u16;
        }
        c.set(n);
        n
    })
}

/// The calling thread's kernel id, cached.
#[inline]
pub(crate) fn os_tid() -> u32 {
    OS_TID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let t = sys::gettid();
        c.set(t);
        t
    })
}

/// Run `f` with this thread's line buffer (a stack one if it is in use).
#[inline]
pub(super) fn with_line<R>(f: impl FnOnce(&mut LineBuf) -> R) -> R {
    let mut f = Some(f);
    let r = LINE.with(|l| {
        l.try_borrow_mut()
            .ok()
            .map(|mut b| (f.take().expect("called once"))(&mut b))
    });
    match r {
        Some(r) => r,
        None => {
            let mut b = LineBuf::new();
            (f.take().expect("called once"))(&mut b)
        }
    }
}
