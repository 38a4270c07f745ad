//! [`try_load`]: whether a backend can work on this kernel, asked the way
//! attaching would ask it, minus the attaching. `xskdbg doctor` reports it.
//!
//! The BPF backends load their real skeletons (the same objects, programs
//! and relocations [`crate::attach`] loads), so the kernel's verifier and
//! its lockdown decide; the objects are dropped again at once, and the
//! top-level `bpf_trace_printk` event the load enables is put back. The
//! `tracefs` backend computes its `kprobe_events` lines from kernel BTF and
//! checks that every probed function exists; it writes nothing, since
//! defining an event is already attaching it.

use std::path::Path;

use xskdbg_tracefs::TraceFs;

use crate::attach::{load_bpf, with_libbpf_log};
use crate::backend::Backend;
use crate::btf::KernelBtf;
use crate::error::{ProbeError, Result};
use crate::kprobe_events::{self, GROUP};
use crate::sys;

/// What a successful [`try_load`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loadable {
    /// What was loaded or checked (`3 BPF programs`, `5 kprobe events`).
    pub what: String,
    /// Remarks: functions this kernel lacks, fallbacks taken.
    pub notes: Vec<String>,
}

/// Loads `backend` on the running kernel without attaching anything; see
/// the module docs. Errors are the ones [`crate::attach`] would give
/// (a precheck or the kernel's refusal, with what this kernel offers).
pub fn try_load(backend: Backend) -> Result<Loadable> {
    if backend == Backend::Auto {
        return Err(ProbeError::Usage(
            "auto is not a backend: try each of Backend::AUTO_ORDER".into(),
        ));
    }
    let tfs = TraceFs::find()?;
    let caps = sys::caps(&tfs);
    if let Some(why) = caps.precheck(backend) {
        return Err(ProbeError::Refused {
            backend,
            what: "precheck".into(),
            cause: why,
            offers: caps.summary(),
        });
    }
    let mut notes = Vec::new();
    if backend == Backend::Tracefs {
        let btf = KernelBtf::open(Path::new(sys::VMLINUX_BTF))?;
        let offs = kprobe_events::Offsets::from_btf(&btf)?;
        let mut n = 0;
        for d in kprobe_events::defs(&offs, GROUP) {
            if caps.funcs_missing.contains(&d.func) {
                // The precheck already refused a missing required one.
                notes.push(format!(
                    "{} not in /proc/kallsyms (inlined?): not probed",
                    d.func
                ));
            } else {
                n += 1;
            }
        }
        return Ok(Loadable {
            what: format!("{n} kprobe events defined from BTF offsets (not written)"),
            notes,
        });
    }
    // Loading a program that calls bpf_trace_printk makes the kernel enable
    // that event in the top-level buffer; a check must leave it as it was.
    let printk = "events/bpf_trace/bpf_trace_printk/enable";
    let top = tfs.top();
    let was_on = if tfs.sys().exists(&top.path(printk)) {
        Some(String::from_utf8_lossy(&top.read_file(printk)?).trim() != "0")
    } else {
        None
    };
    // Ring output, the default: the objects as an attachment loads them.
    let rings = crate::drain::Rings::create().map_err(|e| ProbeError::Refused {
        backend,
        what: "create the rings".into(),
        cause: e.to_string(),
        offers: caps.summary(),
    })?;
    let loaded = with_libbpf_log(|| load_bpf(backend, &caps, false, Some(&rings), &mut notes));
    let progs: Result<usize> = loaded.map(|l| {
        l.iter()
            .map(|l| l.object().progs().filter(|p| p.autoload()).count())
            .sum()
    });
    // The kernel turns the switch on from a work item it only schedules at
    // load time: wait for it, then put the switch back.
    if was_on == Some(false) {
        if progs.is_ok() {
            crate::attach::await_printk_switch(&top, printk);
        }
        top.write_file(printk, b"0")?;
    }
    let progs = progs?;
    Ok(Loadable {
        what: format!("{progs} BPF programs loaded (not attached)"),
        notes,
    })
}
