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

/// A number as the template gives it: literal, `!Ref` to a parameter (its default), or
/// `!FindInMap [map, key, attribute]` whose key may itself be such a `!Ref`.
fn resolve(doc: &Value, v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Tagged(t) if t.tag == "Ref" => {
            let name = t.value.as_str()?;
            resolve(doc, &doc["Parameters"][name]["Default"])
        }
        Value::Tagged(t) if t.tag == "FindInMap" => {
            let args = t.value.as_sequence()?;
            let [map, key, attribute] = args.as_slice() else {
                return None;
            };
            let key = match key {
                Value::String(s) => s.clone(),
                other => resolve(doc, other)?.to_string(),
            };
            resolve(
                doc,
                &doc["Mappings"][map.as_str()?][key.as_str()][attribute.as_str()?],
            )
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
    use serde_yaml::Value;

    fn real_template() -> Value {
        let text = std::fs::read_to_string(crate::paths::root().join("template.yaml")).unwrap();
        serde_yaml::from_str(&text).unwrap()
    }

    #[test]
    fn reads_the_real_template() {
        let s = super::load().unwrap();
        assert_eq!(
            s.max_receive_count, 15,
            "default of parameter MaxReceiveCount"
        );
        assert_eq!(
            s.visibility_timeout_secs, 180,
            "6x the default FunctionTimeout (30 s)"
        );
        assert_eq!(s.retention_secs, 345_600, "4 days by default");
        assert_eq!(s.dlq_retention_secs, 1_209_600);
        assert_eq!(s.table_key, "pk");
    }

    /// AWS advises a visibility timeout of at least 6x the function timeout: every timeout
    /// the template offers maps to exactly that.
    #[test]
    fn visibility_timeout_is_six_times_every_offered_function_timeout() {
        let doc = real_template();
        let offered = doc["Parameters"]["FunctionTimeout"]["AllowedValues"]
            .as_sequence()
            .expect("FunctionTimeout AllowedValues");
        assert!(!offered.is_empty());
        for timeout in offered {
            let timeout = timeout.as_u64().expect("a number");
            let seconds =
                &doc["Mappings"]["VisibilityTimeouts"][timeout.to_string().as_str()]["Seconds"];
            assert_eq!(
                seconds.as_u64(),
                Some(6 * timeout),
                "VisibilityTimeouts[{timeout}]"
            );
        }
    }

    #[test]
    fn resolves_refs_and_mappings() {
        let doc: Value = serde_yaml::from_str(
            "Parameters: {T: {Default: 60}}\n\
             Mappings: {M: {'60': {S: 360}}}\n\
             a: !FindInMap [M, !Ref T, S]\n\
             b: !FindInMap [M, '60', S]\n\
             c: !Ref T\n\
             d: !FindInMap [M, !Ref T, Missing]\n",
        )
        .unwrap();
        assert_eq!(super::resolve(&doc, &doc["a"]), Some(360));
        assert_eq!(super::resolve(&doc, &doc["b"]), Some(360));
        assert_eq!(super::resolve(&doc, &doc["c"]), Some(60));
        assert_eq!(super::resolve(&doc, &doc["d"]), None);
    }
}
