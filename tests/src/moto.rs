//! moto server: the local AWS (SQS, S3, DynamoDB, CloudWatch on one port).

use crate::paths;
use crate::process::Managed;
use crate::wait::{free_port, until};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const REGION: &str = "us-east-1";

/// A running moto server; dropping it stops it.
pub struct Moto {
    pub endpoint: String,
    process: Managed,
}

impl Moto {
    /// Starts moto from the project's venv on `port` (a free one when `None`), logging to `log`.
    pub async fn start(port: Option<u16>, log: &Path) -> anyhow::Result<Moto> {
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        // moto's server with DynamoDB's write atomicity restored (see infra/moto_server.py).
        let mut cmd = Command::new(paths::root().join(".venv/bin/python"));
        cmd.arg(paths::root().join("infra/moto_server.py")).args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        let process = Managed::spawn("moto", cmd, log)?;
        let probe = format!("{endpoint}/moto-api/");
        until("moto to answer", Duration::from_secs(60), || async {
            match reqwest::get(&probe).await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        })
        .await?;
        Ok(Moto { endpoint, process })
    }

    /// AWS SDK settings pointing at this moto with fake credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// Stops moto at once.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

/// AWS SDK settings for `endpoint` with fake credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "sluice-local",
        ))
        .load()
        .await
}
