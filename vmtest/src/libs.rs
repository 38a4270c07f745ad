//! The shared libraries a binary needs in the guest, as `ldd` lists them.
//!
//! `ldd` asks the dynamic loader itself, so it follows DT_NEEDED recursively, honours
//! RUNPATH and names the loader (`/lib64/ld-linux-x86-64.so.2`). The libraries are
//! copied to the same absolute paths in the guest, where the loader finds them by its
//! built-in Debian multiarch search path.

use std::path::{Path, PathBuf};

use crate::host::run_tool;
use crate::VmError;

/// What `ldd` output says about one binary.
#[derive(Debug, PartialEq, Eq)]
pub enum LddOutput {
    /// A static binary or not an ELF executable: nothing to add.
    NotDynamic,
    /// The libraries, loader included, by absolute host path.
    Libraries(Vec<PathBuf>),
    /// A library the loader could not find.
    Missing(String),
}

/// Parses `ldd` output (pure).
pub fn parse_ldd(text: &str) -> LddOutput {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not a dynamic executable") || line == "statically linked" {
            return LddOutput::NotDynamic;
        }
        let path_part = match line.split_once("=>") {
            Some((soname, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return LddOutput::Missing(soname.trim().to_string());
                }
                rest
            }
            None => line,
        };
        // "path (0xADDR)"; the vDSO ("linux-vdso.so.1 (0x...)") has no path.
        let path = path_part.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') && !libs.iter().any(|l: &PathBuf| l == Path::new(path)) {
            libs.push(PathBuf::from(path));
        }
    }
    LddOutput::Libraries(libs)
}

/// The shared libraries (loader included) that `binary` needs, by running `ldd`.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, VmError> {
    // ldd exits 1 for static binaries; its output says why.
    let out = run_tool("ldd", [binary], None, true)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match parse_ldd(&text) {
        LddOutput::NotDynamic => Ok(Vec::new()),
        LddOutput::Libraries(libs) => Ok(libs),
        LddOutput::Missing(library) => Err(VmError::MissingLibrary {
            binary: binary.to_path_buf(),
            library,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iproute2_ldd() {
        // `ldd /usr/sbin/ip` on Debian 12.
        let text = "\tlinux-vdso.so.1 (0x00007ffc0e1f2000)\n\
            \tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f0b5c2e4000)\n\
            \tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f0b5c2c6000)\n\
            \tlibmnl.so.0 => /lib/x86_64-linux-gnu/libmnl.so.0 (0x00007f0b5c2be000)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0b5c0dd000)\n\
            \tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0b5c0be000)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f0b5c3d2000)\n";
        let LddOutput::Libraries(libs) = parse_ldd(text) else {
            panic!("not parsed")
        };
        assert_eq!(libs.len(), 6);
        assert_eq!(libs[0], Path::new("/lib/x86_64-linux-gnu/libbpf.so.1"));
        assert_eq!(libs[5], Path::new("/lib64/ld-linux-x86-64.so.2"));
    }

    #[test]
    fn static_and_missing() {
        assert_eq!(
            parse_ldd("\tnot a dynamic executable\n"),
            LddOutput::NotDynamic
        );
        assert_eq!(parse_ldd("\tstatically linked\n"), LddOutput::NotDynamic);
        assert_eq!(
            parse_ldd("\tlibxdp.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n"),
            LddOutput::Missing("libxdp.so.1".into())
        );
    }

    #[test]
    fn real_ldd_on_a_host_binary() {
        // /bin/sh is dynamic on every Debian system; its loader must be listed.
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
    }
}
