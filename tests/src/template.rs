//! Reads the queue, DLQ and table settings from `template.yaml`, so the local stack is built
//! with the same settings as AWS (one source of truth).

use serde_yaml::Value;

/// The settings the local stack takes from the SAM template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout_secs: u64,
    pub retention_secs: u64,
    pub max_receive_count: u64,
    pub dlq_retention_secs: u64,
    pub table_key: String,
}

fn resolve(doc: &Value, v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Tagged(t) if t.tag == "Ref" || t.tag == "!Ref" => {
            let name = t.value.as_str()?;
            resolve(doc, &doc["Parameters"][name]["Default"])
        }
        _ => None,
    }
}

/// Parses the template text.
pub fn queue_settings(text: &str) -> anyhow::Result<QueueSettings> {
    let doc: Value = serde_yaml::from_str(text)?;
    let q = &doc["Resources"]["EventsQueue"]["Properties"];
    let d = &doc["Resources"]["DeadLetterQueue"]["Properties"];
    let t = &doc["Resources"]["IdempotencyTable"]["Properties"];
    let field = |v: &Value, what: &str| {
        resolve(&doc, v).ok_or_else(|| anyhow::anyhow!("template.yaml: cannot read {what}"))
    };
    Ok(QueueSettings {
        visibility_timeout_secs: field(&q["VisibilityTimeout"], "EventsQueue VisibilityTimeout")?,
        retention_secs: field(
            &q["MessageRetentionPeriod"],
            "EventsQueue MessageRetentionPeriod",
        )?,
        max_receive_count: field(
            &q["RedrivePolicy"]["maxReceiveCount"],
            "EventsQueue RedrivePolicy maxReceiveCount",
        )?,
        dlq_retention_secs: field(
            &d["MessageRetentionPeriod"],
            "DeadLetterQueue MessageRetentionPeriod",
        )?,
        table_key: t["KeySchema"][0]["AttributeName"]
            .as_str()
            .ok_or_else(|| {
                anyhow::anyhow!("template.yaml: cannot read IdempotencyTable KeySchema")
            })?
            .to_string(),
    })
}

/// Reads `template.yaml` from the workspace root.
pub fn load() -> anyhow::Result<QueueSettings> {
    let text = std::fs::read_to_string(crate::paths::root().join("template.yaml"))?;
    queue_settings(&text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_real_template() {
        let s = super::load().unwrap();
        assert_eq!(
            s.max_receive_count, 5,
            "default of parameter MaxReceiveCount"
        );
        assert_eq!(s.visibility_timeout_secs, 180);
        assert_eq!(s.dlq_retention_secs, 1_209_600);
        assert_eq!(s.table_key, "pk");
    }
}
