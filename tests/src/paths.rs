//! Where the workspace's files and built binaries are.

use std::path::PathBuf;

/// The workspace root (the directory holding `template.yaml`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A workspace binary built by `cargo build` (debug profile).
pub fn binary(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}
