//! The `sluice` operations CLI, run as the real binary (`target/debug/sluice`, built by
//! `cargo build --workspace --bins`), its exit code and output captured.

use crate::paths;
use std::path::Path;

/// One finished `sluice` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Its stdout as JSON, showing the whole run when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts the exit code, showing the whole run when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// Runs `sluice` with `args` in `cwd`, with `env` and a clean environment otherwise (no
/// SLUICE_* or AWS_* from the caller).
pub async fn run(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    let bin = paths::binary("sluice");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("SLUICE_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().await.expect("sluice runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sluice --stack-file <stack_file> args…` in the stack file's directory.
pub async fn run_with_stack_file(stack_file: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--stack-file", stack_file.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let cwd = stack_file.parent().unwrap_or(Path::new("."));
    run(&all, cwd, &[]).await
}
