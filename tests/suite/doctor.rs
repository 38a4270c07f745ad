//! `xskdbg doctor`, run as a user runs it.

use std::process::Command;

use serde_json::Value;

fn doctor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xskdbg"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("run xskdbg doctor")
}

#[test]
fn json_lists_every_topic_with_a_level() {
    let out = doctor(&["--json"]);
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks: Value = serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    let checks = checks.as_array().unwrap();
    let topics: Vec<&str> = checks
        .iter()
        .map(|c| c["topic"].as_str().unwrap())
        .collect();
    // Backend checks load the probes' own programs, which only a build with
    // the `kernel` feature has; without it one check says they are missing.
    let backends: &[&str] = if cfg!(feature = "kernel") {
        &[
            "backend fentry",
            "backend kprobe",
            "backend tracepoint",
            "backend tracefs",
        ]
    } else {
        &["backends"]
    };
    for t in ["kernel", "veth race", "tracefs", "BTF", "ifindex"]
        .iter()
        .chain(backends)
    {
        assert!(topics.contains(t), "no {t:?} check in {topics:?}");
    }
    for c in checks {
        let level = c["level"].as_str().unwrap();
        assert!(["ok", "warning", "error"].contains(&level), "{c}");
        if level == "error" {
            assert_eq!(code, 1, "an error check must make the exit status 1: {c}");
        }
    }
}

#[test]
fn a_missing_device_is_an_error_that_says_what_to_do() {
    let out = doctor(&["no-such-dev0"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no device no-such-dev0"), "{text}");
    assert!(text.contains("--netns"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    let out = doctor(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}
