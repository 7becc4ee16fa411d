//! The source configuration parser (`SourcesConfig::from_json`, read by the edge from
//! `SLUICE_SOURCES` and by the consumer): never panics; what it accepts is valid, survives
//! `to_json` → `from_json` unchanged, and behaves as documented.

use sluice_protocol::ingest::check_declared_length;
use sluice_protocol::signature::Scheme;
use sluice_protocol::source::secret_var;
use sluice_protocol::{fifo, ConfigError, HeaderMap, SourcesConfig};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match SourcesConfig::from_json(text) {
        Ok(config) => config,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            match &e {
                ConfigError::BadField { source_name, .. } => {
                    assert!(message.contains(&format!("source `{source_name}`")));
                }
                ConfigError::BadDestination {
                    source_name,
                    destination,
                    field,
                    ..
                } => {
                    assert!(message.contains(&format!(
                        "source `{source_name}`: destination `{destination}`: field `{field}`"
                    )));
                }
                _ => {}
            }
            return;
        }
    };
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        SourcesConfig::from_json(&config.to_json()).as_ref(),
        Ok(&config)
    );
    for source in &config.sources {
        assert_eq!(config.get(&source.name), Some(source), "names are unique");
        assert!(source
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
        let var = source.secret_var();
        assert_eq!(var, secret_var(&source.name));
        assert!(var.starts_with("SLUICE_SECRET_"));
        assert!(var["SLUICE_SECRET_".len()..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
        assert!(source.destination.is_none(), "the old form is normalised");
        assert!(!source.destinations.is_empty());
        for (i, d) in source.destinations.iter().enumerate() {
            assert!(d.url.starts_with("http://") || d.url.starts_with("https://"));
            assert_eq!(d.validate(), Ok(()));
            assert!(!source.destinations[..i].iter().any(|o| o.name == d.name));
            assert_eq!(source.destination(&d.name), Some(d));
        }
        assert!(source.max_body_bytes > 0);
        assert_eq!(
            source.allows_content_type(None),
            source.content_types.is_empty()
        );
        for allowed in &source.content_types {
            assert!(
                source.allows_content_type(Some(&format!("{allowed}; charset=utf-8")))
                    || allowed.contains(';')
                    || allowed.trim() != allowed
            );
        }
        assert!(check_declared_length(source, Some(source.max_body_bytes)).is_ok());
        if let Some(over) = source.max_body_bytes.checked_add(1) {
            assert!(check_declared_length(source, Some(over)).is_err());
        }
        let options = source.scheme_options();
        match source.scheme {
            Scheme::Twilio => assert!(options.public_url.is_some()),
            Scheme::Generic => {
                assert_eq!(options.generic.map(|g| g.validate()), Some(Ok(())));
            }
            _ => {}
        }
        let group = fifo::message_group_id(
            &source.name,
            source.fifo_group_key.as_deref(),
            &HeaderMap::new(),
            b"{}",
        );
        assert!(
            !group.is_empty() && group.len() <= 128 && group.bytes().all(|b| b.is_ascii_graphic())
        );
    }
}
