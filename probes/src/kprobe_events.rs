//! The `tracefs` backend: perf-probe-style kprobe events written into
//! `kprobe_events`, no BPF at all. ftrace prints them the way the seed story's
//! `perf probe` events looked (`__xsk_rcv_zc_L7: (...) addr=0x.. len=0x..
//! xs=0x.. fq=0x..`), which the analyzer reads.
//!
//! Without DWARF there is no line-level probing: every probe sits at a
//! function entry and reads fields through offsets taken from kernel BTF.
//! Register names are x86_64's (first arguments in %di, %si, %dx).

use crate::btf::KernelBtf;
use crate::error::Result;

/// Group of every event this backend creates (the project prefix:
/// `detach --all` removes every group starting with it).
pub const GROUP: &str = "xskdbg";

/// Struct offsets the fetch arguments need (bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsets {
    /// `xdp_sock.rx`
    pub xs_rx: u32,
    /// `xdp_sock.pool`
    pub xs_pool: u32,
    /// `xsk_buff_pool.fq`
    pub pool_fq: u32,
    /// `xsk_queue.cached_prod`
    pub q_cached_prod: u32,
    /// `xsk_queue.ring`
    pub q_ring: u32,
    /// `xdp_ring.producer`
    pub ring_producer: u32,
    /// `xdp_buff_xsk.orig_addr` (kernels before 6.9; `None` after).
    pub xskb_orig_addr: Option<u32>,
    /// Where 6.9+ kernels derive the descriptor from (`xp_get_handle`), when
    /// `orig_addr` is gone.
    pub handle: Option<HandleOffsets>,
    /// `sock.__sk_common.skc_family`
    pub sk_family: u32,
}

impl Offsets {
    /// Reads the offsets from kernel BTF.
    pub fn from_btf(btf: &KernelBtf) -> Result<Offsets> {
        let xskb_orig_addr = btf.offset("xdp_buff_xsk", "orig_addr").ok();
        let handle = match xskb_orig_addr {
            Some(_) => None,
            None => HandleOffsets::from_btf(btf).ok(),
        };
        Ok(Offsets {
            xs_rx: btf.offset("xdp_sock", "rx")?,
            xs_pool: btf.offset("xdp_sock", "pool")?,
            pool_fq: btf.offset("xsk_buff_pool", "fq")?,
            q_cached_prod: btf.offset("xsk_queue", "cached_prod")?,
            q_ring: btf.offset("xsk_queue", "ring")?,
            ring_producer: btf.offset("xdp_ring", "producer")?,
            xskb_orig_addr,
            handle,
            sk_family: btf.offset("sock", "__sk_common.skc_family")?,
        })
    }
}

/// Offsets of what `xp_get_handle()` (6.9+) computes the RX descriptor from:
/// `xskb->xdp.data - pool->addrs` in aligned mode; in unaligned mode the offset
/// `data - data_hard_start + pool->headroom` moves into the upper 16 bits.
/// kprobe fetch arguments cannot subtract, so the event carries the parts
/// (`data= hard= umem= hr= unal=`) and the analyzer computes `addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleOffsets {
    /// `xdp_buff_xsk.xdp.data`
    pub xskb_data: u32,
    /// `xdp_buff_xsk.xdp.data_hard_start`
    pub xskb_hard: u32,
    /// `xsk_buff_pool.addrs`
    pub pool_addrs: u32,
    /// `xsk_buff_pool.headroom`
    pub pool_headroom: u32,
    /// `xsk_buff_pool.unaligned`
    pub pool_unaligned: u32,
}

impl HandleOffsets {
    fn from_btf(btf: &KernelBtf) -> Result<HandleOffsets> {
        Ok(HandleOffsets {
            xskb_data: btf.offset("xdp_buff_xsk", "xdp.data")?,
            xskb_hard: btf.offset("xdp_buff_xsk", "xdp.data_hard_start")?,
            pool_addrs: btf.offset("xsk_buff_pool", "addrs")?,
            pool_headroom: btf.offset("xsk_buff_pool", "headroom")?,
            pool_unaligned: btf.offset("xsk_buff_pool", "unaligned")?,
        })
    }
}

/// One kprobe event: its name, its `kprobe_events` line and an optional
/// event filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    /// Event name inside [`GROUP`].
    pub name: String,
    /// Function probed.
    pub func: String,
    /// The line written to `kprobe_events`.
    pub line: String,
    /// Written to `events/<group>/<name>/filter` when set.
    pub filter: Option<String>,
    /// Whether attaching fails without it (receive side) or it is skipped
    /// with a note when the function is missing.
    pub required: bool,
}

/// `AF_XDP` address family (include/linux/socket.h).
const AF_XDP: u32 = 44;

/// The events of this backend for a kernel with these offsets. `group` is
/// normally [`GROUP`]; tests pass a unique one so they run in parallel.
pub fn defs(o: &Offsets, group: &str) -> Vec<ProbeDef> {
    let mut v = Vec::new();
    // __xsk_rcv_zc(xs, xskb, len) at entry: the slot it is about to reserve
    // is rx->cached_prod. addr= is xskb->orig_addr, the frame's chunk as
    // taken from FILL (before 6.9). Later kernels have no such field: the
    // event carries the parts of xp_get_handle() instead (HandleOffsets).
    let addr = match (o.xskb_orig_addr, &o.handle) {
        (Some(off), _) => format!(" addr=+{off}(%si):x64"),
        (None, Some(h)) => format!(
            " data=+{d}(%si):x64 hard=+{hs}(%si):x64 umem=+{a}(+{pool}(%di)):x64 hr=+{hr}(+{pool}(%di)):x32 unal=+{u}(+{pool}(%di)):x8",
            d = h.xskb_data,
            hs = h.xskb_hard,
            a = h.pool_addrs,
            hr = h.pool_headroom,
            u = h.pool_unaligned,
            pool = o.xs_pool
        ),
        (None, None) => String::new(),
    };
    v.push(ProbeDef {
        name: "__xsk_rcv_zc_L7".into(),
        func: "__xsk_rcv_zc".into(),
        line: format!(
            "p:{group}/__xsk_rcv_zc_L7 __xsk_rcv_zc{addr} len=%dx:x32 xs=%di:x64 fq=+{fq}(+{pool}(%di)):x64 slot=+{cp}(+{rx}(%di)):x32",
            fq = o.pool_fq,
            pool = o.xs_pool,
            cp = o.q_cached_prod,
            rx = o.xs_rx
        ),
        filter: None,
        required: true,
    });
    // Its return: 0 when the slot was reserved, -ENOBUFS when the RX ring
    // was full. The entry event above fires either way (it runs before
    // xskq_prod_reserve_desc() decides), so without this a failed attempt
    // looks like a receive. A return probe cannot read the arguments on
    // every kernel; it directly follows its entry on the same CPU, and the
    // analyzer pairs them so.
    v.push(ProbeDef {
        name: "__xsk_rcv_zc_ret".into(),
        func: "__xsk_rcv_zc".into(),
        line: format!("r:{group}/__xsk_rcv_zc_ret __xsk_rcv_zc ret=$retval:s32"),
        filter: None,
        required: false,
    });
    // xsk_flush() is inlined; its last step calls sock_def_readable(&xs->sk)
    // right after publishing the producer. Other socket families are dropped
    // by the event filter before they reach the ring buffer.
    v.push(ProbeDef {
        name: "xsk_flush".into(),
        func: "sock_def_readable".into(),
        line: format!(
            "p:{group}/xsk_flush sock_def_readable xs=%di:x64 prod=+{prod}(+{ring}(+{rx}(%di))):x32 family=+{fam}(%di):u16",
            prod = o.ring_producer,
            ring = o.q_ring,
            rx = o.xs_rx,
            fam = o.sk_family
        ),
        filter: Some(format!("family == {AF_XDP}")),
        required: true,
    });
    v.push(ProbeDef {
        name: "xp_raw_get_data".into(),
        func: "xp_raw_get_data".into(),
        line: format!("p:{group}/xp_raw_get_data xp_raw_get_data addr=%si:x64 pool=%di:x64"),
        filter: None,
        required: false,
    });
    v.push(ProbeDef {
        name: "xsk_tx_completed".into(),
        func: "xsk_tx_completed".into(),
        line: format!("p:{group}/xsk_tx_completed xsk_tx_completed pool=%di:x64 n=%si:u32"),
        filter: None,
        required: false,
    });
    v.push(ProbeDef {
        name: "xsk_destruct_skb".into(),
        func: "xsk_destruct_skb".into(),
        line: format!("p:{group}/xsk_destruct_skb xsk_destruct_skb skb=%di:x64"),
        filter: None,
        required: false,
    });
    v
}

/// The events of `kprobe_events` content (one definition per line, as the
/// kernel lists them: `p:group/name func args...`) whose group starts with
/// `prefix`, as `group/name`.
pub fn leftovers(kprobe_events: &str, prefix: &str) -> Vec<String> {
    kprobe_events
        .lines()
        .filter_map(|l| {
            let spec = l.split_whitespace().next()?;
            let (_, ev) = spec.split_once(':')?;
            let (group, _) = ev.split_once('/')?;
            group.starts_with(prefix).then(|| ev.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offs(orig: Option<u32>) -> Offsets {
        Offsets {
            xs_rx: 0x3c0,
            xs_pool: 0x3e0,
            pool_fq: 0x10,
            q_cached_prod: 8,
            q_ring: 0x10,
            ring_producer: 0,
            xskb_orig_addr: orig,
            handle: None,
            sk_family: 0x10,
        }
    }

    #[test]
    fn rcv_line_like_perf_probe() {
        let d = defs(&offs(Some(0x38)), GROUP);
        assert_eq!(
            d[0].line,
            "p:xskdbg/__xsk_rcv_zc_L7 __xsk_rcv_zc addr=+56(%si):x64 len=%dx:x32 xs=%di:x64 fq=+16(+992(%di)):x64 slot=+8(+960(%di)):x32"
        );
        assert!(d[0].required);
        let d = defs(&offs(None), "xskdbgt1");
        assert!(d[0]
            .line
            .starts_with("p:xskdbgt1/__xsk_rcv_zc_L7 __xsk_rcv_zc len="));
        assert_eq!(d[2].filter.as_deref(), Some("family == 44"));
        // 6.9+: the parts xp_get_handle() derives the descriptor from.
        let mut o = offs(None);
        o.handle = Some(HandleOffsets {
            xskb_data: 8,
            xskb_hard: 0x18,
            pool_addrs: 0x40,
            pool_headroom: 0x68,
            pool_unaligned: 0x70,
        });
        assert_eq!(
            defs(&o, GROUP)[0].line,
            "p:xskdbg/__xsk_rcv_zc_L7 __xsk_rcv_zc data=+8(%si):x64 hard=+24(%si):x64 umem=+64(+992(%di)):x64 hr=+104(+992(%di)):x32 unal=+112(+992(%di)):x8 len=%dx:x32 xs=%di:x64 fq=+16(+992(%di)):x64 slot=+8(+960(%di)):x32"
        );
        assert!(d[2].line.contains("prod=+0(+16(+960(%di))):x32"));
        assert_eq!(
            d[1].line,
            "r:xskdbgt1/__xsk_rcv_zc_ret __xsk_rcv_zc ret=$retval:s32"
        );
        assert!(!d[1].required);
    }

    #[test]
    fn leftovers_by_prefix() {
        let ke = "p:xskdbg/__xsk_rcv_zc_L7 __xsk_rcv_zc len=%dx:x32\n\
                  p:other/foo do_sys_open\n\
                  r:xskdbg-123/ret __xsk_rcv_zc ret=$retval\n\
                  garbage\n";
        assert_eq!(
            leftovers(ke, GROUP),
            vec!["xskdbg/__xsk_rcv_zc_L7", "xskdbg-123/ret"]
        );
    }
}
