//! Splits a batch into lanes: the units that run concurrently.
//!
//! A standard queue's records are independent: one lane each. A FIFO queue's records that
//! share a `MessageGroupId` form one ordered lane (in batch order, which is the group's
//! order), so a group is processed in order and stopped at its first failure. Lanes never
//! reorder records within a group.

use aws_lambda_events::event::sqs::SqsMessage;

/// Records that must run one after another, in order.
#[derive(Debug, Default)]
pub struct Lane {
    /// The FIFO message group; `None` for a standard queue's single record.
    pub group: Option<String>,
    pub records: Vec<SqsMessage>,
}

/// Groups `records` into lanes, keeping batch order within each lane and across lanes by
/// first appearance.
pub fn split(records: Vec<SqsMessage>) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for record in records {
        match record.attributes.get("MessageGroupId").cloned() {
            Some(group) => match lanes.iter_mut().find(|l| l.group.as_ref() == Some(&group)) {
                Some(lane) => lane.records.push(record),
                None => lanes.push(Lane {
                    group: Some(group),
                    records: vec![record],
                }),
            },
            None => lanes.push(Lane {
                group: None,
                records: vec![record],
            }),
        }
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, group: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        if let Some(g) = group {
            m.attributes.insert("MessageGroupId".into(), g.into());
        }
        m
    }

    fn ids(lane: &Lane) -> Vec<&str> {
        lane.records
            .iter()
            .map(|r| r.message_id.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn standard_records_run_alone() {
        let lanes = split(vec![record("a", None), record("b", None)]);
        assert_eq!(lanes.len(), 2);
        assert!(lanes
            .iter()
            .all(|l| l.group.is_none() && l.records.len() == 1));
    }

    #[test]
    fn fifo_groups_keep_their_order() {
        let lanes = split(vec![
            record("a1", Some("a")),
            record("b1", Some("b")),
            record("a2", Some("a")),
            record("b2", Some("b")),
            record("a3", Some("a")),
        ]);
        assert_eq!(lanes.len(), 2);
        assert_eq!(lanes[0].group.as_deref(), Some("a"));
        assert_eq!(ids(&lanes[0]), ["a1", "a2", "a3"]);
        assert_eq!(ids(&lanes[1]), ["b1", "b2"]);
    }
}
