//! A route to a Kafka sink: the record's topic and key rendered from the
//! sink's templates, and for the `raw` payload the frame with its
//! envelope (see `record::Envelope`).

use std::sync::Arc;

use crate::config::{KafkaRoute, ListenerConfig, ListenerProtocol, Template, TemplatePart};
use crate::event::Event;
use crate::record::{Envelope, KafkaPart};

/// The listener a frame came in on, as the raw envelope names it; built
/// once per reader.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) listener: Arc<str>,
    pub(crate) framing: Arc<str>,
    pub(crate) timezone: Option<Arc<str>>,
}

impl Origin {
    pub(crate) fn of(config: &ListenerConfig) -> Origin {
        let framing = match config.protocol {
            ListenerProtocol::Udp => "datagram",
            _ => config.framing.as_str(),
        };
        let tz = config.decode.timezone;
        Origin {
            listener: Arc::from(config.name.as_str()),
            framing: Arc::from(framing),
            timezone: (tz != chrono_tz::Tz::UTC).then(|| Arc::from(tz.name())),
        }
    }
}

/// The Kafka part of a record of `route` for `event`; `raw`: with the
/// envelope (the record's value is then the frame).
pub(crate) fn kafka_part(
    route: &KafkaRoute,
    route_name: &str,
    event: &Event,
    origin: &Origin,
    raw: bool,
) -> KafkaPart {
    KafkaPart {
        topic: topic_name(render(&route.topic, route_name, event)),
        key: route.key.as_ref().map(|k| render(k, route_name, event)),
        envelope: raw.then(|| Envelope {
            frame: event.raw_bytes(),
            received_nanos: event.received_nanos,
            peer: event.peer,
            listener: origin.listener.clone(),
            framing: origin.framing.clone(),
            nonce: super::nonce(),
            frame_number: event.frame_number,
            timezone: origin.timezone.clone(),
        }),
    }
}

/// A rendered topic as Kafka takes it: a character it refuses (a host
/// name's `:` or space) becomes `_`, so an odd host cannot make every
/// record of a route undeliverable.
fn topic_name(mut topic: String) -> String {
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        topic = topic
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    }
    topic.truncate(249);
    topic
}

/// A template's text for this event; a field the event lacks renders as
/// `-` (a topic name needs a character; a key of one host stays one key).
fn render(template: &Template, route_name: &str, event: &Event) -> String {
    if let Some(text) = template.constant() {
        return text.to_owned();
    }
    let mut out = String::new();
    for part in &template.parts {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Route => out.push_str(route_name),
            TemplatePart::Value(source) => {
                // Kafka templates hold header and SD fields only (no captures).
                let value = super::line_protocol::value_of(source, event, None);
                out.push_str(value.filter(|v| !v.is_empty()).unwrap_or("-"));
            }
        }
    }
    out
}
