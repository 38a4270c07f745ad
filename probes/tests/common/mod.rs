//! Helpers shared by the probes' root tests.
#![allow(dead_code)]

use std::collections::HashMap;

/// The `key=value` fields of the xskdbg line inside a trace line, with its
/// op, when the line holds `xskdbg:1 <op>`.
pub fn project_line(line: &str) -> Option<(String, HashMap<String, String>)> {
    let at = line.find("xskdbg:1 ")?;
    let mut it = line[at + "xskdbg:1 ".len()..].split_whitespace();
    let op = it.next()?.to_string();
    let kv = it
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((op, kv))
}

/// Parses a lower-case hex field without 0x.
pub fn hex(kv: &HashMap<String, String>, k: &str) -> u64 {
    let v = kv
        .get(k)
        .unwrap_or_else(|| panic!("field {k} missing in {kv:?}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("field {k}={v}: {e}"))
}

/// CPU of a trace line (`[001]`).
pub fn cpu_of(line: &str) -> Option<u32> {
    let s = line.find('[')?;
    let e = line[s..].find(']')? + s;
    line[s + 1..e].trim().parse().ok()
}

/// Whether a root test may run here (skips with a reason; fails under CI=true).
pub fn require_root(test: &str) -> bool {
    xsknet::testenv::require_root(test)
}
