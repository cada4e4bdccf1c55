//! Running the `sextant` binary from the repository root in the CLI tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the examples' paths are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `sextant ARGS` in the repository root.
pub fn sextant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sextant")).args(args).current_dir(root()).output().expect("sextant runs")
}

/// Runs `sextant ARGS`, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = sextant(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sextant ARGS`, which must fail with exit code 1 and a message, not a panic; its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = sextant(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail with exit 1; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}
