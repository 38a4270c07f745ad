//! Asks the running kernel which kinds of BPF program it accepts, by loading
//! the smallest program of each kind (`r0 = 0; exit`). Kernel config alone
//! does not answer this: a locked-down kernel can have
//! `CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y` and still refuse fentry with
//! EPERM. The BTF lookup that names the attach target is pure and tested.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const BTF_MAGIC: u16 = 0xeb9f;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_FUNC: u32 = 12;

/// Finds the BTF type id of the type named `name` of `kind` in raw BTF
/// (`/sys/kernel/btf/vmlinux`). Returns `None` on malformed input.
pub fn btf_find(btf: &[u8], name: &str, kind: u32) -> Option<u32> {
    let rd32 = |off: usize| -> Option<u32> {
        Some(u32::from_le_bytes(btf.get(off..off + 4)?.try_into().ok()?))
    };
    if u16::from_le_bytes(btf.get(0..2)?.try_into().ok()?) != BTF_MAGIC {
        return None;
    }
    let hdr_len = rd32(4)? as usize;
    let type_off = rd32(8)? as usize;
    let type_len = rd32(12)? as usize;
    let str_off = rd32(16)? as usize;
    let str_len = rd32(20)? as usize;
    let types = btf.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
    let strs = btf.get(hdr_len + str_off..hdr_len + str_off + str_len)?;
    let want = name.as_bytes();
    let mut off = 0usize;
    let mut id = 1u32;
    while off + 12 <= types.len() {
        let name_off = u32::from_le_bytes(types[off..off + 4].try_into().ok()?) as usize;
        let info = u32::from_le_bytes(types[off + 4..off + 8].try_into().ok()?);
        let vlen = (info & 0xffff) as usize;
        let k = (info >> 24) & 0x1f;
        if k == kind {
            if let Some(s) = strs.get(name_off..) {
                let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                if &s[..end] == want {
                    return Some(id);
                }
            }
        }
        let extra = match k {
            1 | 14 | 17 => 4,     // INT, VAR, DECL_TAG
            3 => 12,              // ARRAY
            4 | 5 => vlen * 12,   // STRUCT, UNION
            6 | 13 => vlen * 8,   // ENUM, FUNC_PROTO
            15 | 19 => vlen * 12, // DATASEC, ENUM64
            0 | 2 | 7..=12 | 16 | 18 => 0,
            _ => return None,
        };
        off += 12 + extra;
        id += 1;
    }
    None
}

/// Result of trying one program kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The kernel accepted the program.
    Yes,
    /// The kernel refused it; the text says how (errno and meaning).
    No(String),
}

fn sys_bpf(cmd: i32, attr: &mut [u8; 128]) -> io::Result<OwnedFd> {
    // SAFETY: attr is a zeroed bpf_attr-sized buffer that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Loads `r0 = 0; exit` as a tracing program attached (at load time) to BTF
/// id `btf_id` with `attach_type`, then, for fentry, opens the attachment.
fn try_tracing(attach_type: u32, btf_id: u32, attach: bool) -> Support {
    const BPF_PROG_LOAD: i32 = 5;
    const BPF_RAW_TRACEPOINT_OPEN: i32 = 17;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    // mov64 r0, 0 ; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_TRACING.to_ne_bytes());
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..56].copy_from_slice(b"xskdbg_doctor\0\0\0"[..8].as_ref());
    attr[68..72].copy_from_slice(&attach_type.to_ne_bytes());
    attr[108..112].copy_from_slice(&btf_id.to_ne_bytes());
    let prog = match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => fd,
        Err(e) => return No(describe(&e)),
    };
    if attach {
        use std::os::fd::AsRawFd;
        let mut a = [0u8; 128];
        a[8..12].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
        // The link fd detaches on drop, at the end of this scope.
        if let Err(e) = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &mut a) {
            return No(format!("loads, but attaching failed: {}", describe(&e)));
        }
    }
    Support::Yes
}

use Support::No;

fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            "EPERM (refused: no CAP_BPF/CAP_PERFMON, or the kernel is locked down)".into()
        }
        Some(libc::EINVAL) => "EINVAL (program type or attach type not supported)".into(),
        // 524 is the kernel-internal ENOTSUPP that bpf() leaks to user space.
        Some(524) | Some(libc::EOPNOTSUPP) => "not supported by this kernel (ENOTSUPP)".into(),
        Some(libc::ENOSYS) => "no bpf() syscall (CONFIG_BPF_SYSCALL off)".into(),
        _ => e.to_string(),
    }
}

/// Which kernel-side capture this kernel allows, with the reason for each "no".
#[derive(Debug, Clone)]
pub struct ProbeSupport {
    /// BPF trampolines (fentry/fexit) on `__xsk_map_flush`.
    pub fentry: Support,
    /// BPF kprobes through perf_event_open (needs the `kprobe` PMU).
    pub kprobe: Support,
    /// tracefs `kprobe_events`.
    pub tracefs_kprobe: Support,
    /// `tp_btf` on `xdp:xdp_redirect` (what the tracepoint backend needs).
    pub tp_btf: Support,
}

/// Tries every probe kind on the running kernel. Needs root (CAP_BPF).
pub fn probe_support(btf: Option<&[u8]>, tracefs: Option<&std::path::Path>) -> ProbeSupport {
    const BPF_TRACE_RAW_TP: u32 = 23;
    const BPF_TRACE_FENTRY: u32 = 24;
    let no_btf = || No("no kernel BTF (/sys/kernel/btf/vmlinux)".into());
    let fentry = match btf {
        None => no_btf(),
        Some(b) => match btf_find(b, "__xsk_map_flush", BTF_KIND_FUNC)
            .or_else(|| btf_find(b, "xsk_flush", BTF_KIND_FUNC))
        {
            None => No("neither __xsk_map_flush nor xsk_flush is in BTF (inlined?)".into()),
            Some(id) => try_tracing(BPF_TRACE_FENTRY, id, true),
        },
    };
    let tp_btf = match btf {
        None => no_btf(),
        Some(b) => match btf_find(b, "btf_trace_xdp_redirect", BTF_KIND_TYPEDEF) {
            None => No("tracepoint xdp:xdp_redirect has no BTF type".into()),
            Some(id) => try_tracing(BPF_TRACE_RAW_TP, id, false),
        },
    };
    let kprobe = if std::path::Path::new("/sys/bus/event_source/devices/kprobe/type").exists() {
        Support::Yes
    } else {
        No("no kprobe PMU (/sys/bus/event_source/devices/kprobe): CONFIG_KPROBES is off".into())
    };
    let tracefs_kprobe = match tracefs {
        Some(t) if t.join("kprobe_events").exists() => Support::Yes,
        Some(t) => No(format!(
            "{} has no kprobe_events (CONFIG_KPROBE_EVENTS off)",
            t.display()
        )),
        None => No("tracefs is not mounted".into()),
    };
    ProbeSupport {
        fentry,
        kprobe,
        tracefs_kprobe,
        tp_btf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btf_with(types: &[(u32, u32, &str)]) -> Vec<u8> {
        // (kind, vlen, name) entries with no trailing data except FUNC_PROTO-free kinds.
        let mut strs = vec![0u8];
        let mut ty = Vec::new();
        for (kind, vlen, name) in types {
            let off = strs.len() as u32;
            strs.extend_from_slice(name.as_bytes());
            strs.push(0);
            ty.extend_from_slice(&off.to_le_bytes());
            ty.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            ty.extend_from_slice(&0u32.to_le_bytes());
            let extra = match kind {
                1 => 4,
                4 => *vlen as usize * 12,
                13 => *vlen as usize * 8,
                _ => 0,
            };
            ty.extend(std::iter::repeat_n(0u8, extra));
        }
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(ty.len() as u32).to_le_bytes());
        b.extend_from_slice(&(ty.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strs.len() as u32).to_le_bytes());
        b.extend_from_slice(&ty);
        b.extend_from_slice(&strs);
        b
    }

    #[test]
    fn finds_functions_after_variable_length_types() {
        let b = btf_with(&[
            (1, 0, "int"),
            (4, 3, "xdp_sock"),
            (13, 2, ""),
            (12, 0, "__xsk_map_flush"),
        ]);
        assert_eq!(btf_find(&b, "__xsk_map_flush", BTF_KIND_FUNC), Some(4));
        assert_eq!(btf_find(&b, "xdp_sock", BTF_KIND_FUNC), None);
    }

    #[test]
    fn malformed_btf_is_none() {
        assert_eq!(btf_find(b"junk", "x", 12), None);
        let mut b = btf_with(&[(12, 0, "f")]);
        b.truncate(30);
        assert_eq!(btf_find(&b, "f", 12), None);
    }

    #[test]
    fn finds_in_the_running_kernel_btf_when_present() {
        if let Ok(b) = std::fs::read("/sys/kernel/btf/vmlinux") {
            assert!(
                btf_find(&b, "xsk_rcv_zc", BTF_KIND_FUNC).is_some()
                    || btf_find(&b, "__xsk_map_flush", BTF_KIND_FUNC).is_some()
                    || btf_find(&b, "xp_raw_get_data", BTF_KIND_FUNC).is_some()
            );
            assert!(btf_find(&b, "btf_trace_xdp_redirect", BTF_KIND_TYPEDEF).is_some());
        } else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
        }
    }
}
