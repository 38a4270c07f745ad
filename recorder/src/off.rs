//! The recorder compiled out: every type is empty and every call is an
//! empty `#[inline(always)]` function, so an app that leaves the recorder's
//! calls in its code pays nothing in builds without the `enabled` feature.

use crate::types::{
    Error, PoolConfig, PostTrigger, RecorderConfig, SockConfig, State, UmemConfig, Violation,
    ViolationKind, XdpDesc, XdpStats,
};

/// The in-process checker (compiled out: holds nothing, checks nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorder;

/// A registered UMEM (compiled out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Umem;

/// A registered buffer pool (compiled out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pool;

/// A registered socket (compiled out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sock;

impl Recorder {
    /// Whether this build checks anything.
    pub const ENABLED: bool = false;

    /// Does nothing; never fails.
    #[inline(always)]
    pub fn new(_cfg: RecorderConfig) -> Result<Recorder, Error> {
        Ok(Recorder)
    }

    /// Does nothing; never fails (the C API's constructor).
    #[inline(always)]
    pub(crate) fn open(_cfg: RecorderConfig, _ends_process: bool) -> Result<Recorder, Error> {
        Ok(Recorder)
    }

    /// Does nothing; never fails.
    #[inline(always)]
    pub fn umem(&self, _cfg: UmemConfig) -> Result<Umem, Error> {
        Ok(Umem)
    }

    /// Always 0.
    #[inline(always)]
    pub fn violations(&self) -> u64 {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn violations_of(&self, _kind: ViolationKind) -> u64 {
        0
    }

    /// Always `None`.
    #[inline(always)]
    pub fn summary(&self) -> Option<String> {
        None
    }

    /// Does nothing.
    #[inline(always)]
    pub fn print_summary(&self) {}

    /// Always empty.
    #[inline(always)]
    pub fn notes(&self) -> &[String] {
        &[]
    }

    /// Always 0.
    #[inline(always)]
    pub fn recycled(&self) -> u64 {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn sink_errors(&self) -> u64 {
        0
    }

    /// Always `None`.
    #[inline(always)]
    pub fn last_sink_error(&self) -> Option<String> {
        None
    }

    /// Always `None`.
    #[inline(always)]
    pub fn last_violation(&self) -> Option<Violation> {
        None
    }

    /// Always false.
    #[inline(always)]
    pub fn is_frozen(&self) -> bool {
        false
    }

    /// Does nothing.
    #[inline(always)]
    pub fn end(&self) {}

    /// Always 0.
    #[inline(always)]
    pub fn tx_rejected(&self) -> u64 {
        0
    }

    /// Always [`PostTrigger::NONE`]: nothing is recorded, nothing frozen.
    #[inline(always)]
    pub fn post_trigger(&self) -> PostTrigger {
        PostTrigger::NONE
    }

    /// Writes nothing; 0.
    #[inline(always)]
    pub fn audit(&self) -> u64 {
        0
    }

    /// Does nothing.
    #[inline(always)]
    pub fn audit_every(&self, _every: std::time::Duration) {}

    /// Always empty.
    #[inline(always)]
    pub fn dump(&self) -> Vec<u8> {
        Vec::new()
    }
}

impl Umem {
    /// Does nothing; never fails.
    #[inline(always)]
    pub fn pool(&self, _cfg: PoolConfig) -> Result<Pool, Error> {
        Ok(Pool)
    }

    /// Does nothing.
    #[inline(always)]
    pub fn hold(&self, _addrs: &[u64]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn free(&self, _addrs: &[u64]) {}

    /// Always `None`.
    #[inline(always)]
    pub fn state(&self, _addr: u64) -> Option<State> {
        None
    }

    /// Always `None`.
    #[inline(always)]
    pub fn frame_of(&self, _addr: u64) -> Option<u64> {
        None
    }

    /// Always 0.
    #[inline(always)]
    pub fn id(&self) -> u32 {
        0
    }
}

impl Pool {
    /// Does nothing; never fails.
    #[inline(always)]
    pub fn socket(&self, _cfg: SockConfig) -> Result<Sock, Error> {
        Ok(Sock)
    }

    /// Does nothing.
    #[inline(always)]
    pub fn fill(&self, _addrs: &[u64]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn comp(&self, _addrs: &[u64]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn fill_at(&self, _idx: u32, _addrs: &[u64]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn comp_at(&self, _idx: u32, _addrs: &[u64]) {}

    /// Always 0.
    #[inline(always)]
    pub fn id(&self) -> u32 {
        0
    }
}

impl Sock {
    /// Does nothing.
    #[inline(always)]
    pub fn rx(&self, _descs: &[XdpDesc]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn rx_at(&self, _idx: u32, _descs: &[XdpDesc]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn rx_at_prod(&self, _idx: u32, _prod: u32, _descs: &[XdpDesc]) {}

    /// Does nothing; never fails.
    #[inline(always)]
    pub fn declare_rx_poisoned(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Always `None`.
    #[inline(always)]
    pub fn poison(&self) -> Option<u64> {
        None
    }

    /// Does nothing.
    #[inline(always)]
    pub fn tx(&self, _descs: &[XdpDesc]) {}

    /// Does nothing.
    #[inline(always)]
    pub fn tx_at(&self, _idx: u32, _descs: &[XdpDesc]) {}

    /// Always `None`.
    #[inline(always)]
    pub fn stats_snapshot(&self) -> Option<XdpStats> {
        None
    }

    /// Always 0.
    #[inline(always)]
    pub fn id(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_out_types_hold_no_state() {
        assert_eq!(std::mem::size_of::<Recorder>(), 0);
        assert_eq!(std::mem::size_of::<Umem>(), 0);
        assert_eq!(std::mem::size_of::<Pool>(), 0);
        assert_eq!(std::mem::size_of::<Sock>(), 0);
        let r = Recorder::new(RecorderConfig::default()).unwrap();
        let u = r.umem(UmemConfig::aligned(4, 4096)).unwrap();
        let p = u.pool(PoolConfig::new(Default::default())).unwrap();
        let s = p.socket(SockConfig::new(Default::default())).unwrap();
        // The seed's Fill -> Tx misuse goes unnoticed: nothing is checked.
        p.fill(&[0x1000]);
        s.tx(&[XdpDesc::new(0x1000, 64)]);
        assert_eq!(r.violations(), 0);
        assert_eq!(u.state(0x1000), None);
        const { assert!(!Recorder::ENABLED) };
    }
}
