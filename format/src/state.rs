//! Who owns a frame: the ring or list it sits on.

/// The ownership state of a UMEM frame: the states a `violation` line names
/// (`from=`, `to=`), the seed story's `FILL -> RX`, and the recorder's
/// per-frame state machine ([`State::valid_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[repr(u8)]
pub enum State {
    /// Never seen, or the writer did not know.
    Unknown = 0,
    /// On a FILL ring (the kernel's, for receiving).
    Fill = 1,
    /// Read from an RX ring (the application's).
    Rx = 2,
    /// On a TX ring (the kernel's, for sending).
    Tx = 3,
    /// Read from a COMPLETION ring (the application's).
    Comp = 4,
    /// Taken from the application's free list by a thread.
    Held = 5,
    /// On the application's free list.
    Free = 6,
}

impl State {
    /// The word a trace line uses (`from=fill`).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Fill => "fill",
            State::Rx => "rx",
            State::Tx => "tx",
            State::Comp => "comp",
            State::Held => "held",
            State::Free => "free",
        }
    }

    /// The upper-case name the seed traces print (`FILL -> RX`).
    pub const fn name(self) -> &'static str {
        match self {
            State::Fill => "FILL",
            State::Rx => "RX",
            State::Tx => "TX",
            State::Comp => "COMP",
            State::Held => "HELD",
            State::Free => "FREE",
            State::Unknown => "UNKNOWN",
        }
    }

    /// The name flowtrackd's panic prints (`transitioned from Fill to Tx`).
    pub const fn title(self) -> &'static str {
        match self {
            State::Unknown => "Unknown",
            State::Fill => "Fill",
            State::Rx => "Rx",
            State::Tx => "Tx",
            State::Comp => "Comp",
            State::Held => "Held",
            State::Free => "Free",
        }
    }

    /// Read any of those spellings, case-insensitively, and the aliases
    /// seen in the wild (`completion`, `cq`, `hold`).
    pub fn parse(word: &[u8]) -> Option<State> {
        let eq = |s: &str| word.eq_ignore_ascii_case(s.as_bytes());
        Some(if eq("fill") {
            State::Fill
        } else if eq("rx") {
            State::Rx
        } else if eq("tx") {
            State::Tx
        } else if eq("comp") || eq("completion") || eq("cq") {
            State::Comp
        } else if eq("held") || eq("hold") {
            State::Held
        } else if eq("free") {
            State::Free
        } else if eq("unknown") {
            State::Unknown
        } else {
            return None;
        })
    }

    /// Decode from the low bits of a frame word (`self as u8`).
    pub const fn from_u8(v: u8) -> State {
        match v {
            1 => State::Fill,
            2 => State::Rx,
            3 => State::Tx,
            4 => State::Comp,
            5 => State::Held,
            6 => State::Free,
            _ => State::Unknown,
        }
    }

    /// The states a frame may come from to enter `self` (a bit per state).
    pub const fn allowed_from(self) -> u8 {
        const fn b(s: State) -> u8 {
            1 << s as u8
        }
        match self {
            // The app gives the kernel a frame it owns (or sees for the first time).
            State::Fill | State::Tx => {
                b(State::Rx) | b(State::Comp) | b(State::Held) | b(State::Free) | b(State::Unknown)
            }
            // Only the kernel moves FILL to RX and TX to COMPLETION.
            State::Rx => b(State::Fill),
            State::Comp => b(State::Tx),
            State::Held => b(State::Free) | b(State::Rx) | b(State::Comp) | b(State::Unknown),
            State::Free => b(State::Held) | b(State::Rx) | b(State::Comp) | b(State::Unknown),
            State::Unknown => 0,
        }
    }

    /// Whether `from -> self` is a valid move.
    pub const fn valid_from(self, from: State) -> bool {
        self.allowed_from() & (1 << from as u8) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 7] = [
        State::Unknown,
        State::Fill,
        State::Rx,
        State::Tx,
        State::Comp,
        State::Held,
        State::Free,
    ];

    #[test]
    fn every_spelling_reads_back() {
        for s in ALL {
            assert_eq!(State::from_u8(s as u8), s);
            for w in [s.as_str(), s.name(), s.title()] {
                assert_eq!(State::parse(w.as_bytes()), Some(s), "{w}");
            }
        }
        assert_eq!(State::parse(b"Completion"), Some(State::Comp));
        assert_eq!(State::parse(b"filled"), None);
    }

    #[test]
    fn only_the_kernel_moves_fill_to_rx() {
        for from in ALL {
            assert_eq!(State::Rx.valid_from(from), from == State::Fill, "{from:?}");
            assert_eq!(State::Comp.valid_from(from), from == State::Tx, "{from:?}");
        }
        assert!(!State::Fill.valid_from(State::Fill));
        assert!(!State::Tx.valid_from(State::Fill));
    }
}
