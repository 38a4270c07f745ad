//! Struct member offsets from kernel BTF, for the `tracefs` backend's
//! `kprobe_events` fetch arguments (`+OFFSET(%reg)`), which cannot relocate
//! like CO-RE programs do.

use std::path::{Path, PathBuf};

use libbpf_rs::btf::types::{MemberAttr, Struct, Union};
use libbpf_rs::btf::{Btf, BtfType, TypeId};

use crate::error::{ProbeError, Result};

/// Kernel BTF opened from a file (normally `/sys/kernel/btf/vmlinux`).
pub struct KernelBtf {
    btf: Btf<'static>,
    path: PathBuf,
}

/// (name, type, bit offset) of one member of a struct or union.
type Member = (Option<String>, TypeId, u32);

impl KernelBtf {
    /// Opens a BTF file.
    pub fn open(path: &Path) -> Result<KernelBtf> {
        let btf = Btf::from_path(path).map_err(|e| ProbeError::Btf {
            path: path.to_path_buf(),
            msg: format!("cannot read it: {e}; the kernel needs CONFIG_DEBUG_INFO_BTF"),
        })?;
        Ok(KernelBtf {
            btf,
            path: path.to_path_buf(),
        })
    }

    fn members(&self, id: TypeId) -> Option<Vec<Member>> {
        let t: BtfType<'_> = self
            .btf
            .type_by_id::<BtfType<'_>>(id)?
            .skip_mods_and_typedefs();
        let conv = |name: Option<&std::ffi::OsStr>, ty: TypeId, attr: MemberAttr| {
            let off = match attr {
                MemberAttr::Normal { offset } => offset,
                MemberAttr::BitField { offset, .. } => offset,
            };
            (name.map(|n| n.to_string_lossy().into_owned()), ty, off)
        };
        if let Ok(s) = Struct::try_from(t) {
            return Some(s.iter().map(|m| conv(m.name, m.ty, m.attr)).collect());
        }
        if let Ok(u) = Union::try_from(t) {
            return Some(u.iter().map(|m| conv(m.name, m.ty, m.attr)).collect());
        }
        None
    }

    /// Finds `name` among the members of `id`, looking through anonymous
    /// structs and unions; returns (type, bit offset from `id`'s start).
    fn find(&self, id: TypeId, name: &str, depth: u32) -> Option<(TypeId, u32)> {
        if depth > 8 {
            return None;
        }
        let members = self.members(id)?;
        for (n, ty, off) in &members {
            if n.as_deref() == Some(name) {
                return Some((*ty, *off));
            }
        }
        for (n, ty, off) in &members {
            if n.as_deref().is_none_or(str::is_empty) {
                if let Some((t, o)) = self.find(*ty, name, depth + 1) {
                    return Some((t, off + o));
                }
            }
        }
        None
    }

    /// Byte offset of the dotted member path `path` inside `struct strct`,
    /// e.g. `offset("sock", "__sk_common.skc_family")`.
    pub fn offset(&self, strct: &str, path: &str) -> Result<u32> {
        let root = self
            .btf
            .type_by_name::<Struct<'_>>(strct)
            .ok_or_else(|| self.missing(format!("struct {strct} not found")))?;
        let mut id = root.type_id();
        let mut bits = 0u32;
        for part in path.split('.') {
            let (ty, off) = self
                .find(id, part, 0)
                .ok_or_else(|| self.missing(format!("struct {strct} has no member {path}")))?;
            bits += off;
            id = ty;
        }
        if bits % 8 != 0 {
            return Err(self.missing(format!("{strct}.{path} is a bitfield")));
        }
        Ok(bits / 8)
    }

    /// Whether `struct strct` has member `path`.
    pub fn has(&self, strct: &str, path: &str) -> bool {
        self.offset(strct, path).is_ok()
    }

    fn missing(&self, msg: String) -> ProbeError {
        ProbeError::Btf {
            path: self.path.clone(),
            msg,
        }
    }
}
