//! Pure facts about kernels: version parsing, the veth AF_XDP race
//! (fa349e396e48) and which releases carry its fix, kernel config lookups.

use std::fmt;

/// A kernel version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Stable patch level (0 when unknown).
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn leading_num(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// Parses the leading `X.Y[.Z]` of a release string such as `6.18.44-fc-v657`.
pub fn parse_version(s: &str) -> Option<Version> {
    let (major, rest) = leading_num(s.trim())?;
    let (minor, rest) = leading_num(rest.strip_prefix('.')?)?;
    let patch = rest
        .strip_prefix('.')
        .and_then(leading_num)
        .map(|(p, _)| p)
        .unwrap_or(0);
    Some(Version {
        major,
        minor,
        patch,
    })
}

/// The real stable version of a running kernel. Distribution kernels often
/// hide the stable patch level in `uname -r` (Debian: `6.1.0-47-cloud-amd64`)
/// and print it in `/proc/version` (`... Debian 6.1.192-2 ...`).
pub fn running_version(release: &str, proc_version: &str) -> Option<Version> {
    let debian = proc_version
        .split_whitespace()
        .skip_while(|w| *w != "Debian")
        .nth(1)
        .and_then(parse_version);
    debian.or_else(|| parse_version(release))
}

/// What a kernel version says about the veth race of the seed story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VethRace {
    /// veth had no native XDP yet (before 4.19): the race cannot happen.
    NotApplicable,
    /// The release carries fa349e396e48 or its stable backport.
    Fixed(&'static str),
    /// The release predates the fix in its stable series.
    Affected(String),
}

/// Whether `v` carries "veth: Fix race with AF_XDP exposing old or
/// uninitialized descriptors" (mainline fa349e396e48, v6.2-rc1; stable
/// backports in 6.1.5, 6.0.19 and 5.15.87, pushed to stable on 2023-01-10).
pub fn veth_race(v: Version) -> VethRace {
    let fixed_in = |series: (u32, u32), patch: u32| {
        if v.patch >= patch {
            VethRace::Fixed("stable backport of fa349e396e48")
        } else {
            VethRace::Affected(format!(
                "{v} predates the fix in {}.{}.{patch} (fa349e396e48, flush after napi_complete_done in veth_poll)",
                series.0, series.1
            ))
        }
    };
    match (v.major, v.minor) {
        (major, minor) if (major, minor) < (4, 19) => VethRace::NotApplicable,
        (major, minor) if (major, minor) >= (6, 2) => VethRace::Fixed("fa349e396e48 (v6.2)"),
        (6, 1) => fixed_in((6, 1), 5),
        (6, 0) => fixed_in((6, 0), 19),
        (5, 15) => fixed_in((5, 15), 87),
        _ => VethRace::Affected(format!(
            "{v}: no stable backport of fa349e396e48 is known for {}.{}",
            v.major, v.minor
        )),
    }
}

/// Looks up `CONFIG_NAME` in kernel config text: `Some(true)` for `=y`/`=m`,
/// `Some(false)` for "is not set" or another value, `None` when absent.
pub fn config_enabled(config: &str, name: &str) -> Option<bool> {
    for line in config.lines() {
        if let Some(rest) = line.strip_prefix(name) {
            if let Some(v) = rest.strip_prefix('=') {
                return Some(v == "y" || v == "m");
            }
        }
        if line.starts_with("# ") && line[2..].starts_with(name) && line.ends_with(" is not set") {
            let mid = &line[2 + name.len()..];
            if mid == " is not set" {
                return Some(false);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn parses_releases() {
        assert_eq!(
            v("6.18.44-fc-v657"),
            Version {
                major: 6,
                minor: 18,
                patch: 44
            }
        );
        assert_eq!(
            v("6.1"),
            Version {
                major: 6,
                minor: 1,
                patch: 0
            }
        );
        assert!(parse_version("linux").is_none());
    }

    #[test]
    fn debian_patch_level_comes_from_proc_version() {
        let pv = "Linux version 6.1.0-47-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-01-01)";
        assert_eq!(
            running_version("6.1.0-47-cloud-amd64", pv),
            Some(v("6.1.192"))
        );
        assert_eq!(
            running_version("6.18.44-fc", "Linux version 6.18.44-fc"),
            Some(v("6.18.44"))
        );
    }

    #[test]
    fn veth_race_by_release() {
        assert_eq!(veth_race(v("4.14.0")), VethRace::NotApplicable);
        assert!(matches!(veth_race(v("6.1.4")), VethRace::Affected(_)));
        assert!(matches!(veth_race(v("6.1.5")), VethRace::Fixed(_)));
        assert!(matches!(veth_race(v("5.15.86")), VethRace::Affected(_)));
        assert!(matches!(veth_race(v("5.15.87")), VethRace::Fixed(_)));
        assert!(matches!(veth_race(v("5.10.200")), VethRace::Affected(_)));
        assert!(matches!(veth_race(v("6.18.44")), VethRace::Fixed(_)));
    }

    #[test]
    fn reads_config() {
        let c =
            "CONFIG_KPROBES=y\n# CONFIG_FUNCTION_TRACER is not set\nCONFIG_VETH=m\nCONFIG_HZ=250\n";
        assert_eq!(config_enabled(c, "CONFIG_KPROBES"), Some(true));
        assert_eq!(config_enabled(c, "CONFIG_FUNCTION_TRACER"), Some(false));
        assert_eq!(config_enabled(c, "CONFIG_VETH"), Some(true));
        assert_eq!(config_enabled(c, "CONFIG_HZ"), Some(false));
        assert_eq!(config_enabled(c, "CONFIG_KPROBE"), None);
    }
}
