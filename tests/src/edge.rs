//! Runs the built Worker (edge/build), or any other Worker entry point ([`start_script`]),
//! under `wrangler dev` in local mode (workerd), with a generated config: vars as given,
//! secrets in a `.dev.vars` beside it.

use crate::paths;
use crate::process::Managed;
use crate::wait::{free_port, until};
use anyhow::Context as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Starts the edge on 127.0.0.1:`port`; returns once `/healthz` answers.
pub async fn start(
    dir: &Path,
    port: u16,
    vars: &[(&str, String)],
    secrets: &[(String, String)],
    log_level: &str,
) -> anyhow::Result<Managed> {
    start_with_env(dir, port, vars, secrets, log_level, &[]).await
}

/// [`start`] with extra environment for `wrangler dev`, e.g.
/// `WRANGLER_DISABLE_REQUEST_BODY_DRAINING=true`: without it wrangler wraps the Worker in a
/// dev-only middleware that holds every response until the request body has been read to
/// its end, which production does not do.
pub async fn start_with_env(
    dir: &Path,
    port: u16,
    vars: &[(&str, String)],
    secrets: &[(String, String)],
    log_level: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Managed> {
    let shim = paths::root().join("edge/build/worker/shim.mjs");
    anyhow::ensure!(
        shim.exists(),
        "{} is missing: build the edge first (make edge)",
        shim.display()
    );
    start_script(
        &shim,
        "sluice-edge-local",
        dir,
        port,
        vars,
        secrets,
        log_level,
        env,
    )
    .await
}

/// Writes `dir/wrangler.toml` for the Worker whose entry point is `main` (the project's
/// compatibility date, `vars` as given) and `dir/.dev.vars` with `secrets`; returns the
/// config's path. Used by [`start_script`], and by benchmarks that bundle the same Worker.
pub fn write_config(
    dir: &Path,
    main: &Path,
    name: &str,
    vars: &[(&str, String)],
    secrets: &[(String, String)],
) -> anyhow::Result<std::path::PathBuf> {
    let root = paths::root();
    let top: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("wrangler.toml"))?)?;
    let mut config = toml::Table::new();
    config.insert("name".into(), name.into());
    config.insert("main".into(), main.display().to_string().into());
    if let Some(date) = top.get("compatibility_date") {
        config.insert("compatibility_date".into(), date.clone());
    }
    let mut table = toml::Table::new();
    for (k, v) in vars {
        table.insert((*k).into(), v.clone().into());
    }
    config.insert("vars".into(), toml::Value::Table(table));
    std::fs::write(dir.join("wrangler.toml"), toml::to_string(&config)?)?;
    // Secrets, as `wrangler secret put` would hold them in production.
    let dev_vars: String = secrets
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\"\n"))
        .collect();
    std::fs::write(dir.join(".dev.vars"), dev_vars)?;
    Ok(dir.join("wrangler.toml"))
}

/// Any Worker entry point (`main`: a module wrangler bundles, e.g. the TypeScript baseline
/// in bench/ts-worker) under `wrangler dev`, configured as [`write_config`] does; returns
/// once `/healthz` answers.
#[allow(clippy::too_many_arguments)]
pub async fn start_script(
    main: &Path,
    name: &str,
    dir: &Path,
    port: u16,
    vars: &[(&str, String)],
    secrets: &[(String, String)],
    log_level: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Managed> {
    let root = paths::root();
    let config = write_config(dir, main, name, vars, secrets)?;
    let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
    cmd.current_dir(dir)
        .args(["dev", "--config"])
        .arg(&config)
        .args(["--local", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port()?.to_string()])
        .arg("--persist-to")
        .arg(dir.join("wrangler-state"))
        .args([
            "--show-interactive-dev-session=false",
            "--log-level",
            log_level,
        ])
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs"))
        .envs(env.iter().copied());
    let process = Managed::spawn("wrangler", cmd, &dir.join("edge.log"))?;
    let health = format!("http://127.0.0.1:{port}/healthz");
    until(
        "the edge (wrangler dev) to answer /healthz",
        Duration::from_secs(90),
        || async {
            match reqwest::get(&health).await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        },
    )
    .await
    .with_context(|| format!("see {}", dir.join("edge.log").display()))?;
    Ok(process)
}
