//! Operation words and field keys of `docs/TRACE-FORMAT.md`.
//!
//! Every name exists in three spellings generated from one list, so a
//! writer, a parser's `match` and a parser's fast path cannot drift apart:
//! `op::KRX` (`"krx"`, for writers and messages), `op::bytes::KRX`
//! (`b"krx"`, usable as a `match` pattern on a line's bytes) and, for keys,
//! `key::field::XS` (`b" xs="`, the field as a canonical line spells it).

/// Declares a module of names with their byte twins (and, for keys, the
/// ` key=` spelling).
macro_rules! names {
    (
        $(#[$m:meta])*
        mod $module:ident {
            $($(#[$d:meta])* $name:ident = $text:literal,)*
        }
    ) => {
        $(#[$m])*
        pub mod $module {
            names!(@items $($(#[$d])* $name = $text,)*);
        }
    };
    (
        $(#[$m:meta])*
        mod $module:ident with $field:ident {
            $($(#[$d:meta])* $name:ident = $text:literal,)*
        }
    ) => {
        $(#[$m])*
        pub mod $module {
            names!(@items $($(#[$d])* $name = $text,)*);

            /// The same names as a canonical line writes the field, with
            /// its separator: ` key=`.
            pub mod $field {
                $(
                    #[doc = concat!("`b\" ", $text, "=\"`")]
                    pub const $name: &[u8] = concat!(" ", $text, "=").as_bytes();
                )*
            }
        }
    };
    (@items $($(#[$d:meta])* $name:ident = $text:literal,)*) => {
        $($(#[$d])* pub const $name: &str = $text;)*

        /// Every name, in the order of `docs/TRACE-FORMAT.md`.
        pub const ALL: &[&str] = &[$($text),*];

        /// The same names as bytes, for `match` patterns on a line.
        pub mod bytes {
            $(
                #[doc = concat!("`b\"", $text, "\"`")]
                pub const $name: &[u8] = $text.as_bytes();
            )*
        }
    };
}

names! {
    /// Operation words: the token after `xskdbg:1 `.
    mod op {
        /// Declares a UMEM (recorder).
        UMEM = "umem",
        /// Declares a buffer pool, the FILL + COMPLETION pair (recorder).
        POOL = "pool",
        /// Declares a socket, the RX + TX pair (recorder).
        SOCK = "sock",
        /// Frames the application produced on FILL.
        FILL = "fill",
        /// Descriptors the application consumed from RX.
        RX = "rx",
        /// Descriptors the application produced on TX.
        TX = "tx",
        /// Frames the application consumed from COMPLETION.
        COMP = "comp",
        /// Frames the application took from its own free list.
        HOLD = "hold",
        /// Frames the application returned to its own free list.
        FREE = "free",
        /// An `XDP_STATISTICS` snapshot.
        STATS = "stats",
        /// A violation the recorder caught in-process.
        VIOLATION = "violation",
        /// FILL entries explained by the kernel's free-list recycling.
        RECYCLE = "recycle",
        /// One frame of the offending thread's user stack.
        STACK = "stack",
        /// Frames a UMEM's application holds, and since when.
        AUDIT = "audit",
        /// The probes' header: backend and what it proves.
        PROBE = "probe",
        /// The kernel reserved an RX slot for a frame.
        KRX = "krx",
        /// The kernel wrote a reserved RX slot.
        KRXDONE = "krxdone",
        /// The kernel published the RX producer.
        KFLUSH = "kflush",
        /// The kernel took a frame from TX.
        KTX = "ktx",
        /// The kernel produced completions.
        KCOMP = "kcomp",
        /// A NAPI poll ended.
        KPOLL = "kpoll",
        /// The kernel stack of the preceding `krx`/`kflush` of this CPU.
        KSTACK = "kstack",
        /// The frames of a kernel stack id.
        KSTACKDEF = "kstackdef",
        /// An XDP redirect into a socket, an XDP program or a receive failed.
        KXDPERR = "kxdperr",
        /// A drainer wrote every record of its CPU stamped before `t=`.
        KDRAIN = "kdrain",
    }
}

names! {
    /// Field keys: the `key` of `key=value`.
    mod key with field {
        /// Socket key `netns_cookie:ifindex:queue_id`.
        SK = "sk",
        /// The recorder's pool id.
        POOL = "pool",
        /// Kernel socket pointer.
        XS = "xs",
        /// The recorder's UMEM id.
        UMEM = "umem",
        /// UMEM size in bytes.
        SIZE = "size",
        /// UMEM chunk (frame) size.
        CHUNK = "chunk",
        /// `aligned`/`unaligned` (umem), `drv`/`skb`/`zc` (krx).
        MODE = "mode",
        /// UMEM headroom.
        HEADROOM = "headroom",
        /// The value the application writes into consumed RX slots.
        POISON = "poison",
        /// The socket's file descriptor.
        FD = "fd",
        /// Free text to the end of the line; always last.
        LABEL = "label",
        /// Number of entries in the line's list (or of completions).
        N = "n",
        /// An address, or a list of addresses.
        A = "a",
        /// Ring counter of a batch's first descriptor.
        IDX = "idx",
        /// A list of descriptors `addr:len[:options]`.
        D = "d",
        /// `XDP_STATISTICS` `rx_dropped`.
        RX_DROPPED = "rx_dropped",
        /// `XDP_STATISTICS` `rx_invalid_descs`.
        RX_INVALID = "rx_invalid",
        /// `XDP_STATISTICS` `tx_invalid_descs`.
        TX_INVALID = "tx_invalid",
        /// `XDP_STATISTICS` `rx_ring_full`.
        RX_FULL = "rx_full",
        /// `XDP_STATISTICS` `rx_fill_ring_empty_descs`.
        FILL_EMPTY = "fill_empty",
        /// `XDP_STATISTICS` `tx_ring_empty_descs`.
        TX_EMPTY = "tx_empty",
        /// A violation's finding kind.
        KIND = "kind",
        /// A frame key (chunk base, or the low 48 bits when unaligned).
        FRAME = "frame",
        /// State before a move.
        FROM = "from",
        /// State asked for.
        TO = "to",
        /// The frame FIFO order expected.
        EXPECTED = "expected",
        /// What followed `expected` in the FIFO.
        REMAINING = "remaining",
        /// How many FIFO entries `remaining` left out.
        MORE = "more",
        /// A stack frame's index (0 = innermost).
        I = "i",
        /// A symbolized stack frame; like `label`, to the end of the line.
        SYM = "sym",
        /// The probe backend.
        BACKEND = "backend",
        /// The kernel release.
        KERNEL = "kernel",
        /// How the probes see RX publication.
        FLUSH = "flush",
        /// Whether the backend sees RX slots.
        RXSLOT = "rxslot",
        /// Whether the backend sees transmits.
        TX = "tx",
        /// Whether the backend sees completions.
        COMP = "comp",
        /// Packet length.
        LEN = "len",
        /// Descriptor options (multi-buffer `XDP_PKT_CONTD`).
        OPT = "opt",
        /// RX slot (the producer counter before the reservation).
        SLOT = "slot",
        /// Kernel buffer pool pointer.
        KPOOL = "kpool",
        /// The RX ring's producer.
        PROD = "prod",
        /// The FILL ring's cached consumer.
        FCONS = "fcons",
        /// The RX ring's cached producer.
        CPROD = "cprod",
        /// Where a probe fired.
        AT = "at",
        /// NAPI struct pointer.
        NAPI = "napi",
        /// A device: ifindex, name, or `netns_cookie:ifindex`.
        DEV = "dev",
        /// NAPI work done.
        WORK = "work",
        /// NAPI budget.
        BUDGET = "budget",
        /// A kernel stack id.
        ID = "id",
        /// A kernel stack's frames.
        F = "f",
        /// Why an XDP receive failed.
        WHY = "why",
        /// The kernel's error number.
        ERRNO = "errno",
        /// The XDP action.
        ACT = "act",
        /// Frames the application holds (`audit`).
        HELD = "held",
        /// Descriptors the application took from RX and COMPLETION so far.
        TAKEN = "taken",
        /// The longest hold, in takes, of a frame the application returned.
        HOLD_MAX = "hold_max",
        /// Whether the application records its own free list.
        FREELIST = "freelist",
        /// The `taken` count when each listed frame was taken.
        SINCE = "since",
        /// How long each listed frame has been held, in milliseconds.
        AGE_MS = "age_ms",
        /// A socket's identity (its `SO_COOKIE`): tells apart sockets that
        /// share one `sk` (`XDP_SHARED_UMEM` on one device queue).
        SID = "sid",
        /// `sock ... gone=1`: the application let go of the socket; its key
        /// (and its kernel socket's `xs`) may name a new socket after it.
        GONE = "gone",
        /// The recorder's sequence number: one counter per recorder.
        SEQ = "seq",
        /// The trace clock the session chose (`probe` line).
        CLOCK = "clock",
        /// A violation's post-trigger window.
        WINDOW = "window",
        /// A drained record's own CPU (hex).
        CPU = "cpu",
        /// A drained record's own stamp, `secs.nnnnnnnnn`.
        T = "t",
        /// Records a probe ring refused so far (`kdrain`).
        LOST = "lost",
        /// Drainers in the session (`kdrain`).
        OF = "of",
        /// A drainer's last drain (`kdrain final=1`).
        FINAL = "final",
    }
}

/// Value words that name a choice.
pub mod word {
    /// `umem mode=aligned`.
    pub const ALIGNED: &str = "aligned";
    /// `umem mode=unaligned`.
    pub const UNALIGNED: &str = "unaligned";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_agree() {
        assert_eq!(op::bytes::KRX, op::KRX.as_bytes());
        assert_eq!(key::field::RX_DROPPED, b" rx_dropped=");
        assert_eq!(op::ALL.len(), 25);
        assert!(op::ALL.contains(&"kstackdef"));
        for k in key::ALL {
            assert!(
                k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{k}"
            );
        }
        let mut seen = std::collections::HashSet::new();
        assert!(key::ALL.iter().all(|k| seen.insert(k)), "a key twice");
    }

    #[test]
    fn names_work_as_patterns() {
        let word: &[u8] = b"kflush";
        assert!(matches!(word, op::bytes::KFLUSH));
        assert!(!matches!(word, op::bytes::KRX));
    }
}
