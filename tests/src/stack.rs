//! Starts and stops a whole local Sluice pipeline.

use crate::fault_proxy::FaultProxy;
use crate::moto::Moto;
use crate::paths;
use crate::process::Managed;
use crate::template::{self, QueueSettings};
use crate::wait::free_port;
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use sluice_protocol::signature::mac::Algorithm;
use sluice_protocol::signature::{Encoding, GenericHmac, SchemeOptions};
use sluice_protocol::{DestinationConfig, Scheme, SourceConfig, SourcesConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::moto::REGION;

/// A source to declare.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    pub scheme: Scheme,
    /// Standard Webhooks only: asymmetric `v1a` (ed25519) instead of HMAC `v1`.
    pub ed25519: bool,
    /// Generic only: how the provider signs (default [`demo_generic`]).
    pub generic: Option<GenericHmac>,
    /// Twilio only: the public URL the provider signs (default: the edge's own URL).
    pub public_url: Option<String>,
    /// The source's `content_types` (empty: any).
    pub content_types: Vec<String>,
    /// The source's `require_json`.
    pub require_json: bool,
    /// The source's destinations (its routes). `None`: one destination, `default`, at
    /// `destination_url/<name>`, written the old way (`"destination": "<url>"`), as every
    /// source was before routes.
    pub destinations: Option<Vec<DestinationConfig>>,
    /// What the edge verifies with (`SLUICE_SECRET_<NAME>`: the current secret, then any
    /// previous ones, space-separated); the first is what the provider signs with. `None`:
    /// fresh dev secrets.
    pub secret: Option<String>,
    /// The source as configured, for the settings this spec has no field for (body limit,
    /// timestamp tolerance, FIFO group key): a source read from a sources file. `None`:
    /// their defaults.
    pub base: Option<SourceConfig>,
}

impl From<(&str, Scheme)> for SourceSpec {
    fn from((name, scheme): (&str, Scheme)) -> Self {
        SourceSpec {
            name: name.to_string(),
            scheme,
            ed25519: false,
            generic: None,
            public_url: None,
            content_types: Vec::new(),
            require_json: false,
            destinations: None,
            secret: None,
            base: None,
        }
    }
}

impl SourceSpec {
    /// A source with these destinations.
    pub fn routed(name: &str, scheme: Scheme, destinations: Vec<DestinationConfig>) -> Self {
        SourceSpec {
            destinations: Some(destinations),
            ..SourceSpec::from((name, scheme))
        }
    }

    /// The source exactly as `config` declares it (destination URLs as given), with fresh
    /// dev secrets unless [`SourceSpec::secret`] is set afterwards.
    pub fn from_config(config: &SourceConfig) -> Self {
        SourceSpec {
            name: config.name.clone(),
            scheme: config.scheme,
            ed25519: false,
            generic: config.generic.clone(),
            public_url: config.public_url.clone(),
            content_types: config.content_types.clone(),
            require_json: config.require_json,
            destinations: Some(config.destinations.clone()),
            secret: None,
            base: Some(config.clone()),
        }
    }
}

/// One source per scheme, named after it (`make dev` declares these and
/// [`demo_router`]).
pub fn every_scheme() -> Vec<SourceSpec> {
    let mut specs: Vec<SourceSpec> = [
        ("stripe", Scheme::Stripe),
        ("github", Scheme::Github),
        ("shopify", Scheme::Shopify),
        ("slack", Scheme::Slack),
        ("twilio", Scheme::Twilio),
        ("standard", Scheme::StandardWebhooks),
        ("standard-ed25519", Scheme::StandardWebhooks),
        ("generic", Scheme::Generic),
    ]
    .into_iter()
    .map(SourceSpec::from)
    .collect();
    specs[6].ed25519 = true;
    specs
}

/// `make dev`'s routed source: `shop-router` (Standard Webhooks) fans out to two
/// destinations under `destination_url`: `orders` takes only events whose `type` starts with
/// `order.`, `all` takes every event.
pub fn demo_router(destination_url: &str) -> SourceSpec {
    let base = destination_url.trim_end_matches('/');
    let orders = DestinationConfig {
        filter: Some(serde_json::json!({"body": {"type": {"$startsWith": "order."}}})),
        ..DestinationConfig::new("orders", &format!("{base}/shop-router/orders"))
    };
    let all = DestinationConfig::new("all", &format!("{base}/shop-router/all"));
    SourceSpec::routed("shop-router", Scheme::StandardWebhooks, vec![orders, all])
}

/// The generic HMAC settings the demo `generic` source uses.
pub fn demo_generic() -> GenericHmac {
    GenericHmac {
        header: "x-signature".into(),
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: "sha256=".into(),
        timestamp_header: Some("x-timestamp".into()),
        id_header: Some("x-event-id".into()),
        template: "{timestamp}.{body}".into(),
    }
}

/// A source the stack declares, with its dev secrets.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSource {
    pub name: String,
    pub scheme: Scheme,
    /// What the provider signs with. Dev only.
    pub secret: String,
    /// The secret being rotated out: the edge still accepts it. Dev only.
    pub previous_secret: String,
    /// What the edge holds (`SLUICE_SECRET_<NAME>`): the current and previous secrets (for
    /// ed25519, the public keys), space-separated.
    pub verify_secret: String,
    /// The URL of its one destination, for a source with exactly one (as every source had
    /// before routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Every destination, with its filter (header values are not listed).
    pub destinations: Vec<DemoDestination>,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericHmac>,
}

/// One destination of a [`DemoSource`], as `stack.json` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DemoDestination {
    pub name: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
}

impl DemoDestination {
    fn listing(destinations: &[DestinationConfig]) -> Vec<DemoDestination> {
        destinations
            .iter()
            .map(|d| DemoDestination {
                name: d.name.clone(),
                url: d.url.clone(),
                filter: d.filter.clone(),
            })
            .collect()
    }
}

impl DemoSource {
    /// The URL of the destination called `name`.
    pub fn destination_url(&self, name: &str) -> Option<&str> {
        self.destinations
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.url.as_str())
    }

    fn set_destinations(&mut self, destinations: &[DestinationConfig]) {
        self.destinations = DemoDestination::listing(destinations);
        self.destination = match destinations {
            [one] => Some(one.url.clone()),
            _ => None,
        };
    }

    /// Headers a provider would send for `body`, signed now with this source's secret.
    pub fn sign(&self, id: &str, body: &[u8]) -> Vec<(String, String)> {
        self.sign_at(id, unix_now(), body)
    }

    /// Headers signed as of `unix_secs`.
    pub fn sign_at(&self, id: &str, unix_secs: i64, body: &[u8]) -> Vec<(String, String)> {
        self.sign_with(&self.secret, id, unix_secs, body)
    }

    /// Headers signed with an explicit secret (the previous one, or a wrong one).
    pub fn sign_with(
        &self,
        secret: &str,
        id: &str,
        unix_secs: i64,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let secret = self
            .scheme
            .parse_secret(secret)
            .unwrap_or_else(|e| panic!("dev secret of {} does not parse: {e}", self.name));
        let options = SchemeOptions {
            public_url: self.public_url.as_deref(),
            generic: self.generic.as_ref(),
            external_macs: None,
        };
        self.scheme
            .sign(&secret, id, unix_secs, body, &options)
            .unwrap_or_else(|e| panic!("cannot sign for {}: {e}", self.name))
    }

    /// The content type this source's provider sends.
    pub fn content_type(&self) -> &'static str {
        match self.scheme {
            Scheme::Twilio => "application/x-www-form-urlencoded",
            _ => "application/json",
        }
    }
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh dev secret in the scheme's format.
pub fn dev_secret(scheme: Scheme) -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    match scheme {
        Scheme::StandardWebhooks => format!("whsec_{}", B64.encode(bytes)),
        _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// A fresh ed25519 key pair: (`whsk_` for the provider, `whpk_` for the edge).
pub fn dev_ed25519_pair() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    sluice_protocol::signature::ed25519_pair(seed)
}

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Logs, generated wrangler config, `stack.json`.
    pub dir: PathBuf,
    /// Sources to declare. Each delivers to its [`SourceSpec::destinations`], or without
    /// them to `destination_url/<name>`.
    pub sources: Vec<SourceSpec>,
    pub destination_url: String,
    /// Fixed ports (for `make dev`); free ports when `None`.
    pub moto_port: Option<u16>,
    pub edge_port: Option<u16>,
    /// Override the template's visibility timeout (tests keep retries fast).
    pub visibility_timeout_secs: Option<u64>,
    /// Whether to run the consumer.
    pub poller: bool,
    /// The `whsec_` secret deliveries are signed with.
    pub destination_secret: String,
    /// Put a [`FaultProxy`] between the edge/consumer and moto (the test's own AWS clients
    /// still talk to moto directly); set its faults through [`Stack::aws_faults`].
    pub aws_fault_proxy: bool,
    /// Extra environment variables of the consumer, set after (so overriding) the stack's
    /// own: the values of `{"env": "VAR"}` header references, tuning knobs.
    pub consumer_env: Vec<(String, String)>,
}

impl StackOptions {
    /// Options for a test: a fresh temp dir, free ports, short visibility timeout.
    pub fn for_test(name: &str, destination_url: &str, sources: &[(&str, Scheme)]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sluice-{name}-{}-{}",
            std::process::id(),
            rand::rng().next_u32()
        ));
        StackOptions {
            dir,
            sources: sources.iter().map(|&spec| SourceSpec::from(spec)).collect(),
            destination_url: destination_url.to_string(),
            moto_port: None,
            edge_port: None,
            // Retries of failed records are timed by the consumer's backoff (1-2 s here), not
            // by this; it bounds the invocation (the claim window), which must leave room for
            // a whole delivery (SLUICE_DELIVERY_TIMEOUT_MS, 3 s).
            visibility_timeout_secs: Some(8),
            poller: true,
            destination_secret: dev_secret(Scheme::StandardWebhooks),
            aws_fault_proxy: false,
            consumer_env: Vec::new(),
        }
    }
}

/// A running local pipeline. Dropping it stops every process it started.
pub struct Stack {
    pub dir: PathBuf,
    pub edge_url: String,
    pub aws_endpoint: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub table: String,
    pub bucket: String,
    pub settings: QueueSettings,
    pub sources: Vec<DemoSource>,
    pub destination_secret: String,
    /// The fault proxy in front of moto, when the options asked for one.
    pub aws_faults: Option<FaultProxy>,
    /// Where the edge and the consumer send AWS calls: moto, or the fault proxy.
    components_endpoint: String,
    /// The sources as the consumer is (next) started with.
    sources_config: SourcesConfig,
    /// Sources written the old way (`"destination": "<url>"`).
    legacy: BTreeSet<String>,
    consumer_env: Vec<(String, String)>,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    moto: Option<Moto>,
    edge: Option<Managed>,
    poller: Option<Managed>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(&options.dir)?;
        let dir = options.dir.canonicalize()?;
        let mut settings = template::load()?;
        if let Some(v) = options.visibility_timeout_secs {
            settings.visibility_timeout_secs = v;
        }

        // moto: SQS, S3, DynamoDB, CloudWatch on one port.
        let moto = Moto::start(options.moto_port, &dir.join("moto.log")).await?;
        let aws_endpoint = moto.endpoint.clone();
        let sdk = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let (queue_url, dlq_url) = create_queues(&sqs, &settings).await?;
        let table = "sluice-idempotency".to_string();
        create_table(&dynamodb, &table, &settings.table_key).await?;
        let bucket = "sluice-payloads".to_string();
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "create bucket: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;

        let edge_port = match options.edge_port {
            Some(p) => p,
            None => free_port()?,
        };
        let edge_url = format!("http://127.0.0.1:{edge_port}");
        let default_url =
            |name: &str| format!("{}/{name}", options.destination_url.trim_end_matches('/'));
        let configs: Vec<SourceConfig> = options
            .sources
            .iter()
            .map(|spec| {
                let url = format!("{edge_url}/hooks/{}", spec.name);
                let mut c = spec.base.clone().unwrap_or_else(|| {
                    SourceConfig::new(&spec.name, spec.scheme, &default_url(&spec.name))
                });
                c.name = spec.name.clone();
                c.scheme = spec.scheme;
                c.destination = None;
                c.public_url =
                    (spec.scheme == Scheme::Twilio).then(|| spec.public_url.clone().unwrap_or(url));
                c.generic = (spec.scheme == Scheme::Generic)
                    .then(|| spec.generic.clone().unwrap_or_else(demo_generic));
                c.content_types = spec.content_types.clone();
                c.require_json = spec.require_json;
                c.destinations = match &spec.destinations {
                    Some(d) => d.clone(),
                    None => {
                        SourceConfig::new(&spec.name, spec.scheme, &default_url(&spec.name))
                            .destinations
                    }
                };
                c
            })
            .collect();
        let sources_config = SourcesConfig { sources: configs };
        sources_config
            .validate()
            .map_err(|e| anyhow::anyhow!("the stack's sources: {e}"))?;
        let legacy = options
            .sources
            .iter()
            .filter(|s| s.destinations.is_none())
            .map(|s| s.name.clone())
            .collect();
        let sources: Vec<DemoSource> = options
            .sources
            .iter()
            .zip(&sources_config.sources)
            .map(|(spec, config)| {
                let ((secret, current), (previous_secret, previous)) = if spec.ed25519 {
                    (dev_ed25519_pair(), dev_ed25519_pair())
                } else {
                    let (cur, prev) = (dev_secret(spec.scheme), dev_secret(spec.scheme));
                    ((cur.clone(), cur), (prev.clone(), prev))
                };
                let (secret, previous_secret, verify_secret) = match &spec.secret {
                    Some(given) => {
                        let mut parts = given.split_whitespace();
                        (
                            parts.next().unwrap_or_default().to_string(),
                            parts.next().unwrap_or_default().to_string(),
                            given.trim().to_string(),
                        )
                    }
                    None => (secret, previous_secret, format!("{current} {previous}")),
                };
                let mut demo = DemoSource {
                    name: spec.name.clone(),
                    scheme: spec.scheme,
                    secret,
                    previous_secret,
                    verify_secret,
                    destination: None,
                    destinations: Vec::new(),
                    public_url: config.public_url.clone(),
                    generic: config.generic.clone(),
                    url: format!("{edge_url}/hooks/{}", spec.name),
                };
                demo.set_destinations(&config.destinations);
                demo
            })
            .collect();

        let aws_faults = match options.aws_fault_proxy {
            true => Some(FaultProxy::start(&aws_endpoint).await?),
            false => None,
        };
        let components_endpoint = aws_faults
            .as_ref()
            .map_or_else(|| aws_endpoint.clone(), |p| p.url.clone());
        let mut stack = Stack {
            dir: dir.clone(),
            edge_url: edge_url.clone(),
            aws_endpoint,
            queue_url,
            dlq_url,
            table,
            bucket,
            settings,
            sources,
            destination_secret: options.destination_secret.clone(),
            aws_faults,
            components_endpoint,
            sources_config,
            legacy,
            consumer_env: options.consumer_env.clone(),
            sqs,
            dynamodb,
            moto: Some(moto),
            edge: None,
            poller: None,
        };
        stack.start_edge(edge_port).await?;
        if options.poller {
            stack.start_poller()?;
        }
        stack.write_stack_json()?;
        Ok(stack)
    }

    async fn start_edge(&mut self, port: u16) -> anyhow::Result<()> {
        let vars = [
            ("AWS_REGION", REGION.to_string()),
            ("SQS_QUEUE_URL", self.queue_url.clone()),
            ("SQS_ENDPOINT", self.components_endpoint.clone()),
            ("PAYLOAD_BUCKET", self.bucket.clone()),
            ("S3_ENDPOINT", self.components_endpoint.clone()),
            ("SLUICE_SOURCES", self.sources_json()),
        ];
        let mut secrets = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
        ];
        for s in &self.sources {
            secrets.push((
                sluice_protocol::source::secret_var(&s.name),
                s.verify_secret.clone(),
            ));
        }
        self.edge = Some(crate::edge::start(&self.dir, port, &vars, &secrets, "info").await?);
        self.edge_url = format!("http://127.0.0.1:{port}");
        Ok(())
    }

    /// Starts (or restarts) the consumer.
    pub fn start_poller(&mut self) -> anyhow::Result<()> {
        let bin = paths::binary("sluice-local-poller");
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: run cargo build first",
            bin.display()
        );
        let mut cmd = Command::new(bin);
        let function_timeout = self.settings.visibility_timeout_secs.to_string();
        cmd.args([
            "--wait-secs",
            "1",
            "--function-timeout-secs",
            &function_timeout,
        ])
        .env("SLUICE_QUEUE_URL", &self.queue_url)
        .env("SLUICE_SOURCES", self.sources_json())
        .env("SLUICE_TABLE", &self.table)
        .env("SLUICE_DESTINATION_SECRET", &self.destination_secret)
        .env("SLUICE_DELIVERY_TIMEOUT_MS", "3000")
        .env("SLUICE_DLQ_URL", &self.dlq_url)
        .env("SLUICE_ARCHIVE_BUCKET", &self.bucket)
        .env("SLUICE_RETRY_BASE_SECS", "1")
        .env("SLUICE_RETRY_CAP_SECS", "2")
        .env("AWS_ENDPOINT_URL", &self.components_endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "info")
        .envs(self.consumer_env.iter().map(|(k, v)| (k, v)));
        self.poller = Some(Managed::spawn(
            "poller",
            cmd,
            &self.dir.join("consumer.log"),
        )?);
        Ok(())
    }

    /// Stops the consumer at once (SIGKILL), as a crash would.
    pub fn kill_poller(&mut self) {
        if let Some(mut p) = self.poller.take() {
            p.kill();
        }
    }

    /// Stops the consumer (SIGKILL) and starts a new one, with the sources and environment
    /// as they are now.
    pub fn restart_poller(&mut self) -> anyhow::Result<()> {
        self.kill_poller();
        self.start_poller()
    }

    /// Whether a consumer was started and is still running (it exits when its
    /// configuration does not hold, e.g. a secret reference that cannot be resolved).
    pub fn poller_running(&mut self) -> bool {
        self.poller.as_mut().is_some_and(|p| p.is_running())
    }

    /// Replaces the destinations of `source` (written the new way from then on) for the
    /// consumers started after this, and in `stack.json`. The running edge keeps its
    /// configuration: it reads a source's scheme and limits, never its destinations.
    pub fn set_destinations(
        &mut self,
        source: &str,
        destinations: Vec<DestinationConfig>,
    ) -> anyhow::Result<()> {
        let mut config = self.sources_config.clone();
        let s = config
            .sources
            .iter_mut()
            .find(|s| s.name == source)
            .ok_or_else(|| anyhow::anyhow!("no source {source} in this stack"))?;
        s.destinations = destinations.clone();
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("new destinations of {source}: {e}"))?;
        self.sources_config = config;
        self.legacy.remove(source);
        if let Some(demo) = self.sources.iter_mut().find(|s| s.name == source) {
            demo.set_destinations(&destinations);
        }
        self.write_stack_json()
    }

    /// Sets an environment variable of the consumers started after this.
    pub fn set_consumer_env(&mut self, name: &str, value: &str) {
        self.consumer_env.retain(|(k, _)| k != name);
        self.consumer_env
            .push((name.to_string(), value.to_string()));
    }

    /// The sources configuration (`SLUICE_SOURCES`) the edge and the consumer are started
    /// with: sources declared without destinations written the old way.
    pub fn sources_json(&self) -> String {
        let mut doc =
            match serde_json::from_str::<serde_json::Value>(&self.sources_config.to_json()) {
                Ok(doc) => doc,
                Err(_) => return self.sources_config.to_json(),
            };
        if let Some(list) = doc["sources"].as_array_mut() {
            for s in list {
                let legacy = s["name"].as_str().is_some_and(|n| self.legacy.contains(n));
                let url = s["destinations"][0]["url"].clone();
                if let (true, Some(obj)) = (legacy, s.as_object_mut()) {
                    obj.remove("destinations");
                    obj.insert("destination".into(), url);
                }
            }
        }
        doc.to_string()
    }

    /// Creates a Secrets Manager secret in the stack's moto; its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> anyhow::Result<String> {
        let sdk = crate::moto::sdk_config(&self.aws_endpoint).await;
        let out = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "create secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
        out.arn.context("moto returned no secret ARN")
    }

    /// Stops moto at once: AWS becomes unreachable for the edge and the consumer.
    pub fn kill_moto(&mut self) {
        if let Some(mut m) = self.moto.take() {
            m.kill();
        }
    }

    /// Whether every started process is still running.
    pub fn processes_running(&mut self) -> bool {
        self.moto.as_mut().is_some_and(|m| m.is_running())
            && [&mut self.edge, &mut self.poller]
                .into_iter()
                .flatten()
                .all(|p| p.is_running())
    }

    pub fn source(&self, name: &str) -> &DemoSource {
        self.sources
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no source {name} in this stack"))
    }

    /// An S3 client for the stack's moto (path-style).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = crate::moto::sdk_config(&self.aws_endpoint).await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    /// Visible plus in-flight messages on `queue_url` (moto's approximate counts are exact).
    pub async fn queue_count(&self, queue_url: &str) -> anyhow::Result<u64> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |k: &QueueAttributeName| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(get(&QueueAttributeName::ApproximateNumberOfMessages)
            + get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Receives up to ten messages from `queue_url` with every attribute (they become
    /// invisible for the queue's visibility timeout, as for any consumer).
    pub async fn receive(
        &self,
        queue_url: &str,
    ) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// POSTs `body` with `headers` to `/hooks/<source>`.
    pub async fn post(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> anyhow::Result<reqwest::Response> {
        let content_type = self
            .sources
            .iter()
            .find(|s| s.name == source)
            .map_or("application/json", DemoSource::content_type);
        let mut req = reqwest::Client::new()
            .post(format!("{}/hooks/{source}", self.edge_url))
            .header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        Ok(req.body(body.to_vec()).send().await?)
    }

    /// POSTs an event signed for `source` (plus `extra` headers) and returns the event id of
    /// its 202; any other answer panics, with the edge's log.
    pub async fn post_accepted(
        &self,
        source: &str,
        id: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> String {
        let mut headers = self.source(source).sign(id, body);
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let resp = self
            .post(source, &headers, body)
            .await
            .expect("edge reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(
            status,
            202,
            "{source}/{id}: {text}\nedge log:\n{}",
            read_log(&self.log("edge"))
        );
        let v: serde_json::Value = serde_json::from_str(&text).expect("202 body is JSON");
        v["id"].as_str().expect("202 body has id").to_string()
    }

    /// The description of the running stack written to `stack.json`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "edge_url": self.edge_url,
            "aws": {"endpoint": self.aws_endpoint, "region": REGION},
            "queue_url": self.queue_url,
            "dlq_url": self.dlq_url,
            "table": self.table,
            "bucket": self.bucket,
            "destination_file": self.dir.join("deliveries.jsonl"),
            "logs": {
                "edge": self.dir.join("edge.log"),
                "consumer": self.dir.join("consumer.log"),
                "moto": self.dir.join("moto.log"),
            },
            "sources": self.sources,
        })
    }

    fn write_stack_json(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.describe())?;
        std::fs::write(self.dir.join("stack.json"), text)?;
        Ok(())
    }

    /// The directory holding this stack's logs.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }
}

async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    s: &QueueSettings,
) -> anyhow::Result<(String, String)> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let dlq = sqs
        .create_queue()
        .queue_name("sluice-dlq")
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            s.dlq_retention_secs.to_string(),
        )
        .send()
        .await
        .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    let dlq_url = dlq.queue_url.context("no DLQ url")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("no DLQ arn")?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": s.max_receive_count.to_string(),
    })
    .to_string();
    let queue = sqs
        .create_queue()
        .queue_name("sluice-events")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            s.visibility_timeout_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            s.retention_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    Ok((queue.queue_url.context("no queue url")?, dlq_url))
}

/// Creates the idempotency table with the template's key.
pub async fn create_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> anyhow::Result<()> {
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "create table: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(())
}

/// Reads a log file (for assertion messages).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
