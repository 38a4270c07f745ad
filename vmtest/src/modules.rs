//! Kernel module dependency resolution from `modules.dep` text (pure).
//!
//! Debian's cloud kernel builds veth and the virtio drivers as modules. The guest has
//! no `modprobe` database, so the host works out the load order here and the guest
//! `insmod`s the files one after the other: every module after all of its
//! dependencies.

use std::collections::{BTreeMap, BTreeSet};

/// A module asked for could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModuleError {
    /// A line of `modules.dep` is not `path: dep dep ...`.
    #[error("modules.dep line {line}: expected `path.ko: deps...`, found {text:?}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// The module is neither in `modules.dep` nor built in.
    #[error(
        "kernel module {name:?} is neither in modules.dep nor in modules.builtin of this kernel"
    )]
    NotFound {
        /// Module name as asked for.
        name: String,
    },
    /// A dependency named in `modules.dep` has no line of its own.
    #[error("modules.dep names {path:?} as a dependency of {of:?} but has no line for it")]
    MissingDependency {
        /// The dependency's path.
        path: String,
        /// The module that needs it.
        of: String,
    },
    /// Dependencies loop (a broken `modules.dep`).
    #[error("modules.dep has a dependency cycle through {path:?}")]
    Cycle {
        /// A module on the cycle.
        path: String,
    },
}

/// The canonical module name of a module file path: basename without `.ko*`,
/// `-` folded to `_` (the kernel treats them alike).
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = match base.find(".ko") {
        Some(i) => &base[..i],
        None => base,
    };
    stem.replace('-', "_")
}

/// What one kernel's `modules.dep` and `modules.builtin` say.
#[derive(Debug, Default, Clone)]
pub struct ModuleIndex {
    /// Module path (relative to `/lib/modules/VER`) → its dependencies' paths.
    deps: BTreeMap<String, Vec<String>>,
    /// Module name → path.
    by_name: BTreeMap<String, String>,
    /// Names of modules compiled into the kernel.
    builtin: BTreeSet<String>,
}

impl ModuleIndex {
    /// Parses the text of `modules.dep` and (possibly empty) `modules.builtin`.
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> Result<Self, ModuleError> {
        let mut index = ModuleIndex::default();
        for (i, raw) in modules_dep.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((path, rest)) = line.split_once(':') else {
                return Err(ModuleError::Parse {
                    line: i + 1,
                    text: raw.to_string(),
                });
            };
            let path = path.trim();
            if path.is_empty() || path.contains(char::is_whitespace) {
                return Err(ModuleError::Parse {
                    line: i + 1,
                    text: raw.to_string(),
                });
            }
            let deps = rest.split_whitespace().map(str::to_string).collect();
            index.by_name.insert(module_name(path), path.to_string());
            index.deps.insert(path.to_string(), deps);
        }
        for line in modules_builtin.lines() {
            let line = line.trim();
            if !line.is_empty() {
                index.builtin.insert(module_name(line));
            }
        }
        Ok(index)
    }

    /// Whether the module is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }

    /// The module files to load, in load order (dependencies first, each file once),
    /// for the wanted module names. Built-in modules need no file and are skipped.
    pub fn resolve<S: AsRef<str>>(&self, wanted: &[S]) -> Result<Vec<String>, ModuleError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in wanted {
            let name = module_name(name.as_ref());
            let Some(path) = self.by_name.get(&name) else {
                if self.builtin.contains(&name) {
                    continue;
                }
                return Err(ModuleError::NotFound { name });
            };
            let mut visiting = BTreeSet::new();
            self.visit(path, &name, &mut visiting, &mut done, &mut order)?;
        }
        Ok(order)
    }

    /// Depth-first, post-order: a module lands in `order` after all its dependencies.
    /// modules.dep already lists transitive dependencies, but their order on the line is
    /// not a load order, so every dependency's own line is followed too.
    fn visit(
        &self,
        path: &str,
        of: &str,
        visiting: &mut BTreeSet<String>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), ModuleError> {
        if done.contains(path) {
            return Ok(());
        }
        if !visiting.insert(path.to_string()) {
            return Err(ModuleError::Cycle {
                path: path.to_string(),
            });
        }
        let Some(deps) = self.deps.get(path) else {
            return Err(ModuleError::MissingDependency {
                path: path.to_string(),
                of: of.to_string(),
            });
        };
        for dep in deps {
            self.visit(dep, path, visiting, done, order)?;
        }
        visiting.remove(path);
        done.insert(path.to_string());
        order.push(path.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines copied from the modules.dep that depmod writes for Debian's
    // linux-image-6.1.0-56-cloud-amd64 (deps in the order depmod printed them).
    const DEP: &str = "\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/veth.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/char/hw_random/rng-core.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/rng-core.ko:
";
    const BUILTIN: &str = "kernel/net/xdp/xsk.ko\nkernel/net/packet/af_packet.ko\n";

    fn pos(order: &[String], name: &str) -> usize {
        order
            .iter()
            .position(|p| module_name(p) == name)
            .unwrap_or_else(|| panic!("{name} missing from {order:?}"))
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let idx = ModuleIndex::parse(DEP, BUILTIN).unwrap();
        let order = idx.resolve(&["virtio_pci", "virtio_blk", "veth"]).unwrap();
        assert_eq!(order.len(), 7, "{order:?}");
        for dep in [
            "virtio",
            "virtio_ring",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
        ] {
            assert!(pos(&order, dep) < pos(&order, "virtio_pci"));
        }
        assert!(pos(&order, "virtio") < pos(&order, "virtio_blk"));
        assert_eq!(order.last().unwrap(), "kernel/drivers/net/veth.ko");
    }

    #[test]
    fn dash_and_underscore_are_one_name() {
        let idx = ModuleIndex::parse(DEP, "").unwrap();
        let order = idx.resolve(&["virtio-rng"]).unwrap();
        assert_eq!(
            order.last().unwrap(),
            "kernel/drivers/char/hw_random/virtio-rng.ko"
        );
        assert_eq!(idx.resolve(&["virtio_rng"]).unwrap(), order);
        assert!(pos(&order, "rng_core") < pos(&order, "virtio_rng"));
    }

    #[test]
    fn builtin_needs_no_file_and_unknown_is_an_error() {
        let idx = ModuleIndex::parse(DEP, BUILTIN).unwrap();
        assert!(idx.resolve(&["xsk", "af_packet"]).unwrap().is_empty());
        assert!(idx.is_builtin("af-packet"));
        assert_eq!(
            idx.resolve(&["9pnet_virtio"]),
            Err(ModuleError::NotFound {
                name: "9pnet_virtio".into()
            })
        );
    }

    #[test]
    fn broken_files_are_reported() {
        assert!(matches!(
            ModuleIndex::parse("a.ko: b.ko\nno colon here\n", ""),
            Err(ModuleError::Parse { line: 2, .. })
        ));
        let idx = ModuleIndex::parse("a.ko: b.ko\n", "").unwrap();
        assert!(matches!(
            idx.resolve(&["a"]),
            Err(ModuleError::MissingDependency { .. })
        ));
        let idx = ModuleIndex::parse("a.ko: b.ko\nb.ko: a.ko\n", "").unwrap();
        assert!(matches!(
            idx.resolve(&["a"]),
            Err(ModuleError::Cycle { .. })
        ));
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/x/virtio-rng.ko.xz"), "virtio_rng");
        assert_eq!(module_name("veth"), "veth");
        assert_eq!(module_name("veth.ko"), "veth");
    }
}
