//! Every rule a checker can fire: the JSON `rule` of a finding
//! (`kind/detail`, the table of `docs/JSON.md`), named once here instead of
//! spelled at each call site.

use crate::report::Kind;

/// Declares [`Rule`], its [`Rule::as_str`] and [`Rule::ALL`] from one list,
/// so that a rule cannot be added to one and forgotten in the others.
macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        /// A rule: which check fired and why it gave its verdict.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum Rule {
            $($(#[$doc])* $name,)*
        }

        impl Rule {
            /// Every rule, in declaration order.
            #[cfg_attr(not(test), expect(dead_code, reason = "only the tests walk every rule"))]
            pub(crate) const ALL: &[Rule] = &[$(Rule::$name,)*];

            /// The JSON `rule`: `kind/detail`.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(Rule::$name => $text,)*
                }
            }
        }
    };
}

rules! {
    /// Two CPUs' producer sections on one RX ring overlapped, the section
    /// closed by an exact flush.
    ProducerOverlapFlush = "concurrent_producer/flush",
    /// The same, the section closed at an inferred point (NAPI poll end,
    /// `flush=inferred`).
    ProducerOverlapInferredEnd = "concurrent_producer/inferred-end",
    /// A `krx` printed after its write found its slot already published.
    ProducerPublishedBeforeRedirect = "concurrent_producer/published-before-redirect",
    /// An overlap whose end is only inferred, proven by a poisoned read the
    /// application was entitled to (or of a slot published before its
    /// write) on its socket, inside it or right after it.
    ProducerOverlapPoisonedRead = "concurrent_producer/poisoned-read",

    /// The poison read from a slot a flush published before its write.
    PoisonPublishedBeforeWrite = "poisoned_descriptor/published-before-write",
    /// The poison read from a slot its `krx` proved published early.
    PoisonPublishedBeforeRedirect = "poisoned_descriptor/published-before-redirect",
    /// The poison read at a position produced during overlapping sections.
    PoisonConcurrentProducer = "poisoned_descriptor/concurrent-producer",
    /// The poison read at or past the last published producer.
    PoisonReadPastProducer = "poisoned_descriptor/read-past-producer",
    /// The poison read, and nothing says who is to blame.
    PoisonNoEvidence = "poisoned_descriptor/no-evidence",
    /// The poison read below the producer the application saw (`rx ...
    /// prod=`), its index continuing the socket's previous batch: the
    /// kernel published a slot it had not written.
    PoisonEntitledRead = "poisoned_descriptor/entitled-read",
    /// The poison read at an index that repeats or goes back from the
    /// socket's previous batch: the application read a slot it had already
    /// consumed (and poisoned).
    PoisonIndexBack = "poisoned_descriptor/index-back",

    /// The app read another frame than the kernel wrote at that position.
    RxMismatchPosition = "rx_mismatch/position",
    /// The same, at a slot a flush published before its write.
    RxMismatchPublishedBeforeWrite = "rx_mismatch/published-before-write",
    /// The same, at a slot its `krx` proved published early.
    RxMismatchPublishedBeforeRedirect = "rx_mismatch/published-before-redirect",
    /// The same, at or past the last published producer.
    RxMismatchReadPastProducer = "rx_mismatch/read-past-producer",
    /// The app read a frame the kernel wrote at another, still unread slot
    /// than the index it recorded: the index, not the ring, disagrees.
    RxMismatchIndex = "rx_mismatch/index",

    /// The app put a frame on FILL/TX the kernel owned elsewhere.
    AppIntoKernelOwned = "invalid_transition/app-into-kernel-owned",
    /// The app freed or took for a thread a frame the kernel owns.
    AppReusesKernelOwned = "invalid_transition/app-reuses-kernel-owned",
    /// The kernel received a frame that was not on FILL.
    NotFromFill = "invalid_transition/not-from-fill",
    /// The kernel received a frame the record shows the application
    /// holding: its FILL may not have been recorded.
    NotFromFillHeld = "invalid_transition/not-from-fill-held",
    /// The app read from RX a frame the kernel was never given.
    RxNotGiven = "invalid_transition/rx-not-given",
    /// The kernel completed a frame that was not on TX.
    KcompNotSent = "invalid_transition/kcomp-not-sent",
    /// The same, but the kernel had read the frame from TX: the application
    /// may have sent it without recording the batch.
    KcompTxUnrecorded = "invalid_transition/kcomp-tx-unrecorded",
    /// The app consumed a completion no traced kernel completion covers.
    CompNotProduced = "invalid_transition/comp-not-produced",
    /// The app consumed a completion of a frame not on TX (kernel
    /// completions not traced).
    CompNotSent = "invalid_transition/comp-not-sent",
    /// The app's stated `from` state contradicts its own history.
    ClaimedFrom = "invalid_transition/claimed-from",

    /// The app put a frame on FILL that is already there.
    FillTwice = "duplicate_in_flight/fill-twice",
    /// The app put a frame on TX that is already there.
    TxTwice = "duplicate_in_flight/tx-twice",
    /// The app put on FILL a frame the kernel owns elsewhere.
    FillWhileKernelOwned = "duplicate_in_flight/fill-while-kernel-owned",
    /// The app put on TX a frame the kernel owns elsewhere.
    TxWhileKernelOwned = "duplicate_in_flight/tx-while-kernel-owned",
    /// The kernel received a frame again while its first copy was on RX.
    RxTwice = "duplicate_in_flight/rx-twice",
    /// The app took a frame from COMPLETION a second time since its last
    /// send, its first completion ahead of older ones the kernel completed
    /// and the app never got: the kernel overran the COMPLETION ring.
    CompTwice = "duplicate_in_flight/comp-twice",
    /// The same, kernel completions not traced: the lost ones may never
    /// have been completed.
    CompTwiceUntraced = "duplicate_in_flight/comp-twice-untraced",

    /// A frame came out of RX that was not outstanding on FILL.
    NotOutstanding = "fifo_order/not-outstanding",
    /// Completions came back out of TX order.
    TxCompletionOrder = "fifo_order/tx-completion-order",
    /// The recorder's out-of-order frame is still outstanding on FILL.
    RecorderOutOfOrder = "fifo_order/recorder-out-of-order",
    /// The recorder's out-of-order value is the poison.
    RecorderPoison = "fifo_order/recorder-poison",
    /// The recorder's frame is not in the printed part of a cut list.
    RecorderNotListed = "fifo_order/recorder-not-listed",
    /// The recorder's frame is absent from its complete outstanding list.
    RecorderNotOutstanding = "fifo_order/recorder-not-outstanding",

    /// The app took a frame and never gave it back.
    AppHeld = "frame_leak/app-held",
    /// A frame put on FILL (TX) never came back while many after it did.
    PassedByRing = "frame_leak/passed-by-ring",
    /// The recorder's `audit` line lists a frame the application has held
    /// while it took more than max(256, 2 x its longest returned hold)
    /// other descriptors.
    AuditHeld = "frame_leak/audit",

    /// A recorder `violation` line, judged by its `to=` state.
    RecorderViolation = "recorder/violation",

    /// A frame with no history since the UMEM's registration came out of
    /// RX: its FILL was not recorded.
    FirstSeenInRx = "instrumentation/first-seen-in-rx",
    /// An all-zero descriptor from an RX ring poisoned up front.
    OutsideRing = "instrumentation/outside-ring",
    /// An RX index that does not continue the socket's last one.
    RxIndex = "instrumentation/rx-index",
    /// The recorder's `violation kind=not_recorded`.
    RecorderNotRecorded = "instrumentation/recorder-not-recorded",
    /// The recorder's `violation kind=ring_index`.
    RecorderRingIndex = "instrumentation/recorder-ring-index",
    /// The recorder's `violation kind=read_outside_ring`.
    RecorderReadOutsideRing = "instrumentation/recorder-read-outside-ring",
}

impl Rule {
    /// The finding kind the rule's name starts with; `None` for
    /// `recorder/violation`, whose kind is the recorder's.
    pub(crate) fn kind(self) -> Option<Kind> {
        let (family, _) = self.as_str().split_once('/')?;
        Kind::parse(family.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;
    use crate::report::Kind;

    /// The `kind/detail` names of `docs/JSON.md`'s rules table, in order.
    fn documented() -> Vec<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/JSON.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let table = doc
            .split_once("### Rules")
            .and_then(|(_, rest)| rest.split("\n\n").find(|p| p.contains("| rule |")))
            .unwrap_or_else(|| panic!("{path}: no rules table under `### Rules`"));
        let mut names = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            // The first cell: one or more backquoted rules.
            let first = row.split('|').nth(1).unwrap_or_default();
            for name in first.split('`').skip(1).step_by(2) {
                names.push(name.to_string());
            }
        }
        names
    }

    #[test]
    fn every_rule_is_documented_and_every_documented_rule_exists() {
        let documented = documented();
        for r in Rule::ALL {
            assert!(
                documented.iter().any(|d| d == r.as_str()),
                "{} is missing from docs/JSON.md's rules table (spell it in full)",
                r.as_str()
            );
        }
        for d in &documented {
            assert!(
                Rule::ALL.iter().any(|r| r.as_str() == d),
                "docs/JSON.md documents {d}, which no checker fires"
            );
        }
    }

    #[test]
    fn every_rule_names_a_kind_and_one_rule_each() {
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert!(
                r.kind().is_some() || *r == Rule::RecorderViolation,
                "{}: the part before `/` is no finding kind",
                r.as_str()
            );
            assert!(
                Rule::ALL[..i].iter().all(|o| o.as_str() != r.as_str()),
                "{} named twice",
                r.as_str()
            );
        }
        assert_eq!(Rule::RecorderViolation.kind(), None);
        assert_eq!(Rule::RxTwice.kind(), Some(Kind::DuplicateInFlight));
    }
}
