//! Child processes in their own process groups, killed (group and all) on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running child process; dropping it kills its whole process group.
#[derive(Debug)]
pub struct Managed {
    pub name: String,
    child: Option<Child>,
}

impl Managed {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        // If the test process dies without dropping us (killed), the child dies with it.
        // SAFETY: prctl(2) is async-signal-safe and touches only the new process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            anyhow::anyhow!("could not start {name} ({:?}): {e}", cmd.get_program())
        })?;
        Ok(Managed {
            name: name.to_string(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `signal` to the whole process group.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-(pid as i32), signal);
            }
        }
    }

    /// Kills the process group now and reaps the child.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.kill();
    }
}
