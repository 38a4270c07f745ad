//! xskdbg-format: the trace line format of `docs/TRACE-FORMAT.md` in code.
//!
//! The document defines the lines xskdbg's components write into the ftrace
//! ring buffer; this crate is its one implementation, used by every writer
//! (the recorder, the probes' Rust side, the trace generator, tests) and by
//! the analyzer's parser, so a name, a key or a spelling exists once. The BPF
//! programs print their lines with C format strings; a test of the probes
//! crate renders each of them and parses it with the analyzer.
//!
//! Modules:
//! - [`names`]: operation words ([`op`]) and field keys ([`key`]);
//! - `sock`, `state`: the socket key [`SockKey`] and the ownership state
//!   [`State`] a frame is in;
//! - `ops`, `list`: what a line means ([`Op`], [`AppOp`], [`KernelOp`],
//!   [`SeedOp`]) and its lazily decoded lists ([`AddrList`], [`Desc`]);
//! - [`lex`]: the reading rules (numbers, blanks, `key=value` [`Fields`], a
//!   [`Cursor`] for lines in canonical shape), on top of [`swar`]'s
//!   eight-bytes-at-a-time helpers;
//! - `write`: the one line writer, [`LineWriter`];
//! - [`reject`]: the TX descriptors the kernel refuses ([`tx_rejected`]).
//!
//! No kernel calls, no allocation on the reading or writing path.

pub mod lex;
mod list;
pub mod names;
mod ops;
pub mod reject;
mod sock;
mod state;
pub mod swar;
mod write;

pub use lex::{Cursor, Fields};
pub use list::{list_item, AddrList, Desc};
pub use names::{key, op, word};
pub use ops::{AppOp, FlushMode, KernelOp, Op, RxMode, SeedOp};
pub use reject::{tx_rejected, Geometry, TxReject};
pub use sock::{BadSockKey, SockKey};
pub use state::State;
pub use write::{hex_digits, LineWriter};

/// The version of `docs/TRACE-FORMAT.md` this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The format's name and its colon, before the version: a reader takes a
/// line that starts with it for one of the format's, of whatever version.
pub const MAGIC: &[u8] = b"xskdbg:";

/// What every project line of this version starts with: [`MAGIC`], the
/// [`FORMAT_VERSION`] and one space.
pub const PREFIX: &[u8] = b"xskdbg:1 ";

/// Longest line a writer writes, newline included. Kernels before 6.10 cut
/// a `trace_marker` write at 1024 bytes (`TRACE_BUF_SIZE`; 4096 only since
/// then), silently: a cut batch line loses frames and a reader then sees
/// leaks that are not there. So every line stays below 1024 bytes on every
/// kernel, and a writer splits a long batch into several lines.
pub const LINE_MAX: usize = 1000;

/// The poison value of the seed story: what an application writes back into
/// consumed RX slots, so that a slot the kernel exposed before writing it
/// reads as this value.
pub const DEFAULT_POISON: u64 = 0xdead_beef_dead_beef;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_carries_the_version() {
        assert_eq!(PREFIX, format!("xskdbg:{FORMAT_VERSION} ").as_bytes());
        assert!(PREFIX.starts_with(MAGIC));
    }
}
