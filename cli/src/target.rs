//! Which pipeline a command talks to, and the AWS clients for it.
//!
//! Two targets:
//! - the local stack described by a stack file (`.dev/stack.json`, written by `make dev` and
//!   by every test stack): moto's endpoint and region, moto's fixed `test`/`test`
//!   credentials, the queue, DLQ and bucket; flags override single values;
//! - AWS: `--queue-url`, `--dlq-url`, `--bucket` (or `SLUICE_QUEUE_URL`, `SLUICE_DLQ_URL`,
//!   `SLUICE_BUCKET`), region and credentials from the normal AWS chain (environment,
//!   profile, SSO, instance role; `AWS_ENDPOINT_URL` is honoured too).
//!
//! The stack file wins when it is named (`--stack-file` / `SLUICE_STACK_FILE`); otherwise
//! any of the three AWS flags selects AWS; otherwise the default stack file is used.
//! This module must never print or log a credential.

use crate::error::{CliError, Result};
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::{Credentials, ProvideCredentials};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The stack file `make dev` writes, relative to the working directory.
pub const DEFAULT_STACK_FILE: &str = ".dev/stack.json";

/// Options choosing the target; global, so they go before or after the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// The local stack to use [default: .dev/stack.json, written by `make dev`].
    #[arg(
        long,
        global = true,
        help_heading = "Target",
        visible_alias = "stack",
        env = "SLUICE_STACK_FILE",
        value_name = "PATH"
    )]
    pub stack_file: Option<PathBuf>,
    /// The main queue's URL (selects AWS unless a stack file is named).
    #[arg(
        long,
        global = true,
        help_heading = "Target",
        env = "SLUICE_QUEUE_URL",
        value_name = "URL"
    )]
    pub queue_url: Option<String>,
    /// The dead-letter queue's URL (selects AWS unless a stack file is named).
    #[arg(
        long,
        global = true,
        help_heading = "Target",
        env = "SLUICE_DLQ_URL",
        value_name = "URL"
    )]
    pub dlq_url: Option<String>,
    /// The payload bucket, holding the event archive (selects AWS unless a stack file is named).
    #[arg(
        long,
        global = true,
        help_heading = "Target",
        env = "SLUICE_BUCKET",
        value_name = "NAME"
    )]
    pub bucket: Option<String>,
}

impl TargetArgs {
    /// The stack file to read: the named one, or the default.
    pub fn stack_path(&self) -> PathBuf {
        self.stack_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STACK_FILE))
    }

    fn names_aws(&self) -> bool {
        self.queue_url.is_some() || self.dlq_url.is_some() || self.bucket.is_some()
    }
}

/// The parts of a stack file this module reads.
#[derive(Debug, Deserialize)]
struct StackFile {
    aws: StackAws,
    queue_url: Option<String>,
    dlq_url: Option<String>,
    bucket: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StackAws {
    endpoint: String,
    region: String,
}

/// Where the commands' requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The local stack (moto) described by this stack file.
    Local {
        stack_file: PathBuf,
        endpoint: String,
        region: String,
    },
    /// AWS through the normal credential chain.
    Aws { region: String },
}

/// A resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    queue_url: Option<String>,
    dlq_url: Option<String>,
    bucket: Option<String>,
    sdk: SdkConfig,
    path_style: bool,
}

impl Target {
    /// Resolves the target from the options (see the module docs for the rule).
    pub async fn resolve(args: &TargetArgs) -> Result<Target> {
        let default = PathBuf::from(DEFAULT_STACK_FILE);
        if let Some(path) = &args.stack_file {
            return Self::local(path, args).await;
        }
        if args.names_aws() {
            return Self::aws(args).await;
        }
        if default.exists() {
            return Self::local(&default, args).await;
        }
        Err(CliError::Usage(format!(
            "no target: {DEFAULT_STACK_FILE} does not exist (run `make dev`, or name a stack \
             file with --stack-file), and no AWS queue was given (--queue-url, --dlq-url, \
             --bucket or SLUICE_QUEUE_URL, SLUICE_DLQ_URL, SLUICE_BUCKET)"
        )))
    }

    async fn local(path: &Path, args: &TargetArgs) -> Result<Target> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read stack file {}: {e} (run `make dev` to write it)",
                path.display()
            ))
        })?;
        let stack: StackFile = serde_json::from_str(&text).map_err(|e| {
            CliError::Usage(format!(
                "{} is not a Sluice stack file: {e}",
                path.display()
            ))
        })?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&stack.aws.endpoint)
            .region(Region::new(stack.aws.region.clone()))
            // moto's fixed credentials: not a secret, and never the caller's own.
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "sluice-local-stack",
            ))
            .load()
            .await;
        Ok(Target {
            kind: Kind::Local {
                stack_file: path.to_path_buf(),
                endpoint: stack.aws.endpoint,
                region: stack.aws.region,
            },
            queue_url: args.queue_url.clone().or(stack.queue_url),
            dlq_url: args.dlq_url.clone().or(stack.dlq_url),
            bucket: args.bucket.clone().or(stack.bucket),
            sdk,
            path_style: true,
        })
    }

    async fn aws(args: &TargetArgs) -> Result<Target> {
        // The queue URL's region wins: the queue lives there whatever AWS_REGION or the
        // profile says (calls sent elsewhere would answer "no such queue"). Without a queue
        // URL, the usual chain.
        let from_url = [&args.queue_url, &args.dlq_url]
            .into_iter()
            .flatten()
            .find_map(|u| region_of_queue_url(u));
        let region_chain = match from_url {
            Some(region) => {
                RegionProviderChain::first_try(Region::new(region)).or_default_provider()
            }
            None => RegionProviderChain::default_provider(),
        };
        let loader = aws_config::defaults(BehaviorVersion::latest()).region(region_chain);
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            CliError::Usage(
                "no AWS region: set AWS_REGION (or AWS_PROFILE with a region), or pass a \
                     queue URL of the form https://sqs.<region>.amazonaws.com/…"
                    .into(),
            )
        })?;
        let provider = sdk.credentials_provider().ok_or_else(|| {
            CliError::Credentials("no AWS credentials provider is configured".into())
        })?;
        if let Err(e) = provider.provide_credentials().await {
            return Err(CliError::Credentials(format!(
                "no usable AWS credentials: {e}. Set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or run `aws sso login`; for the local stack run \
                 `make dev` or pass --stack-file"
            )));
        }
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        Ok(Target {
            kind: Kind::Aws { region },
            queue_url: args.queue_url.clone(),
            dlq_url: args.dlq_url.clone(),
            bucket: args.bucket.clone(),
            sdk,
            path_style,
        })
    }

    /// True on the local stack (moto): no CloudWatch metrics, no StartMessageMoveTask.
    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local { .. })
    }

    /// One line naming the target, for human output.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Local {
                stack_file,
                endpoint,
                ..
            } => format!("local stack ({}, AWS at {endpoint})", stack_file.display()),
            Kind::Aws { region } => format!("AWS ({region})"),
        }
    }

    /// The main queue's URL, or a usage error naming the flag.
    pub fn queue_url(&self) -> Result<&str> {
        self.queue_url.as_deref().ok_or_else(|| {
            CliError::Usage("no queue URL: pass --queue-url or set SLUICE_QUEUE_URL".into())
        })
    }

    /// The DLQ's URL, or a usage error naming the flag.
    pub fn dlq_url(&self) -> Result<&str> {
        self.dlq_url.as_deref().ok_or_else(|| {
            CliError::Usage("no dead-letter queue URL: pass --dlq-url or set SLUICE_DLQ_URL".into())
        })
    }

    /// The DLQ's URL when known.
    pub fn dlq_url_opt(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }

    /// The payload bucket, or a usage error naming the flag.
    pub fn bucket(&self) -> Result<&str> {
        self.bucket.as_deref().ok_or_else(|| {
            CliError::Usage("no payload bucket: pass --bucket or set SLUICE_BUCKET".into())
        })
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// S3, path-style against a custom endpoint (moto).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(self.path_style)
                .build(),
        )
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }
}

/// The region in `https://sqs.<region>.amazonaws.com/<account>/<name>`.
pub fn region_of_queue_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next()?, parts.next()?) {
        ("sqs", region) if !region.is_empty() => Some(region.to_string()),
        _ => None,
    }
}

/// The queue's name: the last path segment of its URL.
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_and_name_from_queue_urls() {
        let u = "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-events";
        assert_eq!(region_of_queue_url(u).as_deref(), Some("eu-west-1"));
        assert_eq!(queue_name(u), "sluice-events");
        assert_eq!(
            region_of_queue_url("http://127.0.0.1:4566/123456789012/q"),
            None
        );
        assert_eq!(
            queue_name("http://127.0.0.1:4566/123456789012/q.fifo"),
            "q.fifo"
        );
    }

    #[tokio::test]
    async fn a_named_stack_file_that_is_missing_is_a_usage_error() {
        let args = TargetArgs {
            stack_file: Some(PathBuf::from("/nonexistent/sluice/stack.json")),
            ..Default::default()
        };
        let err = Target::resolve(&args).await.err();
        assert!(
            matches!(&err, Some(CliError::Usage(m)) if m.contains("cannot read stack file")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn flags_override_the_stack_file() {
        let dir = std::env::temp_dir().join(format!("sluice-cli-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stack.json");
        std::fs::write(
            &path,
            r#"{"aws":{"endpoint":"http://127.0.0.1:1","region":"us-east-1"},
                "queue_url":"http://127.0.0.1:1/1/q","dlq_url":"http://127.0.0.1:1/1/d",
                "bucket":"b"}"#,
        )
        .unwrap();
        let args = TargetArgs {
            stack_file: Some(path.clone()),
            dlq_url: Some("http://127.0.0.1:1/1/other".into()),
            ..Default::default()
        };
        let t = Target::resolve(&args).await.unwrap();
        assert!(t.is_local());
        assert_eq!(t.queue_url().unwrap(), "http://127.0.0.1:1/1/q");
        assert_eq!(t.dlq_url().unwrap(), "http://127.0.0.1:1/1/other");
        assert_eq!(t.bucket().unwrap(), "b");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
