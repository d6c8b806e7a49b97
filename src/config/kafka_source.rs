//! `protocol = "kafka"` listeners: the consumer side of a two-tier
//! deployment (edge → Kafka → indexer). Runtime settings and validation.

use super::*;

/// Records of one partition handed on but not yet done with (delivered,
/// spilled or dropped and counted), by default; past it the partition is
/// paused.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
pub(crate) const DEFAULT_COMMIT_INTERVAL_MS: u64 = 1_000;
pub(crate) const DEFAULT_SESSION_TIMEOUT_MS: u64 = 45_000;
pub(crate) const DEFAULT_STATISTICS_INTERVAL_MS: u64 = 5_000;

/// The consumer settings of a `protocol = "kafka"` listener. TLS and
/// SASL as a Kafka sink's (`[listeners.kafka_tls]`, `[listeners.sasl]`).
#[derive(Debug, Clone)]
pub struct KafkaSource {
    /// `host:port` of bootstrap brokers.
    pub brokers: Vec<String>,
    pub topics: Vec<String>,
    pub group_id: String,
    /// Records of one partition in flight (handed on, not yet done with)
    /// before the partition is paused.
    pub max_in_flight: usize,
    /// How often done offsets are committed.
    pub commit_interval: Duration,
    pub session_timeout: Duration,
    pub statistics_interval: Duration,
    pub tls: Option<KafkaTls>,
    pub sasl: Option<KafkaSasl>,
}

impl KafkaSource {
    /// What the consumer reads, for `sluice check` and reload answers:
    /// `topics a,b group g`.
    pub fn summary(&self) -> String {
        format!("topics {} group {}", self.topics.join(","), self.group_id)
    }
}

/// The keys only a Kafka listener takes, and whether `l` sets each (a
/// listener of another protocol must set none).
fn kafka_keys(l: &RawListener) -> [(&'static str, bool); 8] {
    [
        ("brokers", l.brokers.is_some()),
        ("topics", l.topics.is_some()),
        ("group_id", l.group_id.is_some()),
        ("max_in_flight", l.max_in_flight.is_some()),
        ("commit_interval_ms", l.commit_interval_ms.is_some()),
        ("session_timeout_ms", l.session_timeout_ms.is_some()),
        ("kafka_tls", l.kafka_tls.is_some()),
        ("sasl", l.sasl.is_some()),
    ]
}

impl Validator<'_, '_> {
    /// A Kafka listener's consumer settings, its keys moved out of `raw`;
    /// `None` for other protocols (which must set none of its keys).
    pub(super) fn kafka_source(
        &self,
        base: &[Seg],
        raw: &mut RawListener,
        frame_keys: &[(&'static str, bool)],
    ) -> Result<Option<Arc<KafkaSource>>, ConfigError> {
        let listen_set = raw.listen.is_some();
        if raw.protocol != ListenerProtocol::Kafka {
            self.refuse_set(
                base,
                &kafka_keys(raw),
                "only a protocol = \"kafka\" listener takes it",
            )?;
            if !listen_set {
                return Err(self.err(&at(base, "listen"), "missing: the address to listen on"));
            }
            return Ok(None);
        }
        if listen_set {
            return Err(self.err(
                &at(base, "listen"),
                "a kafka listener listens on no address: it consumes `topics` from `brokers`",
            ));
        }
        self.refuse_set(
            base,
            frame_keys,
            "a kafka listener takes no socket or framing settings: records are frames already",
        )?;
        let brokers = raw
            .brokers
            .take()
            .ok_or_else(|| self.err(&at(base, "brokers"), "missing: a kafka listener needs it"))?;
        self.brokers(&at(base, "brokers"), &brokers)?;
        let topics = self.topics(base, raw.topics.take())?;
        let group_id = match raw.group_id.take() {
            Some(g) if !g.trim().is_empty() => g,
            Some(_) => return Err(self.err(&at(base, "group_id"), "must not be empty")),
            None => {
                return Err(self.err(
                    &at(base, "group_id"),
                    "missing: the consumer group the indexers share",
                ));
            }
        };
        let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=1_000_000).contains(&max_in_flight) {
            return Err(self.err(&at(base, "max_in_flight"), "must be between 1 and 1000000"));
        }
        let commit_ms = raw.commit_interval_ms.unwrap_or(DEFAULT_COMMIT_INTERVAL_MS);
        if !(10..=60_000).contains(&commit_ms) {
            return Err(self.err(
                &at(base, "commit_interval_ms"),
                "must be between 10 and 60000",
            ));
        }
        let session_ms = raw.session_timeout_ms.unwrap_or(DEFAULT_SESSION_TIMEOUT_MS);
        if !(1_000..=3_600_000).contains(&session_ms) {
            return Err(self.err(
                &at(base, "session_timeout_ms"),
                "must be between 1000 and 3600000",
            ));
        }
        let tls = match raw.kafka_tls.take() {
            Some(t) => {
                if t.cert_file.is_some() != t.key_file.is_some() {
                    return Err(self.err(
                        &at(base, "kafka_tls"),
                        "cert_file and key_file go together (a client certificate)",
                    ));
                }
                let mut files = [t.ca_file, t.cert_file, t.key_file];
                for (k, f) in ["ca_file", "cert_file", "key_file"].iter().zip(&mut files) {
                    if let Some(p) = f {
                        *p = self.resolve(std::mem::take(p));
                        if !p.is_file() {
                            let mut path = at(base, "kafka_tls");
                            path.push(key(k));
                            return Err(self.err(&path, format!("{} is not a file", p.display())));
                        }
                    }
                }
                let [ca_file, cert_file, key_file] = files;
                Some(KafkaTls {
                    ca_file,
                    cert_file,
                    key_file,
                })
            }
            None => None,
        };
        let sasl = match raw.sasl.take() {
            Some(s) if s.username.is_empty() || s.password.is_empty() => {
                return Err(self.err(&at(base, "sasl"), "username and password must not be empty"));
            }
            Some(s) => Some(KafkaSasl {
                mechanism: s.mechanism.unwrap_or(SaslMechanism::ScramSha512),
                username: s.username,
                password: s.password,
            }),
            None => None,
        };
        Ok(Some(Arc::new(KafkaSource {
            brokers,
            topics,
            group_id,
            max_in_flight,
            commit_interval: Duration::from_millis(commit_ms),
            session_timeout: Duration::from_millis(session_ms),
            statistics_interval: Duration::from_millis(DEFAULT_STATISTICS_INTERVAL_MS),
            tls,
            sasl,
        })))
    }
}

impl Validator<'_, '_> {
    /// `topics`: at least one, each a Kafka topic name, or a regular
    /// expression (`^…`: librdkafka subscribes to every topic it matches).
    fn topics(
        &self,
        base: &[Seg],
        topics: Option<Vec<String>>,
    ) -> Result<Vec<String>, ConfigError> {
        let Some(topics) = topics else {
            return Err(self.err(&at(base, "topics"), "missing: a kafka listener needs it"));
        };
        if topics.is_empty() {
            return Err(self.err(&at(base, "topics"), "must list at least one topic"));
        }
        for (i, t) in topics.iter().enumerate() {
            let mut path = at(base, "topics");
            path.push(Seg::Index(i));
            let checked = if t.starts_with('^') {
                regex::Regex::new(t).map(drop).map_err(|e| {
                    format!(
                        "{t:?}: invalid regex (a topic starting with ^ subscribes by pattern): {e}"
                    )
                })
            } else {
                topic_name(t)
            };
            if let Err(why) = checked {
                return Err(self.err(&path, why));
            }
        }
        Ok(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listener: &str) -> Result<Config, String> {
        let text = format!(
            "[[listeners]]\nname = \"k\"\n{listener}\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n[default_route]\nsink = \"f\"\ndocument = {{}}\n"
        );
        Config::from_toml(&text, "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_kafka_listener_takes_brokers_topics_and_group() {
        let c = config(
            "protocol = \"kafka\"\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"syslog.raw\"]\ngroup_id = \"indexers\"\ntimezone = \"Europe/Berlin\"\nmax_in_flight = 500",
        )
        .unwrap();
        let l = &c.listeners[0];
        assert_eq!(l.protocol, ListenerProtocol::Kafka);
        let k = l.kafka.as_deref().unwrap();
        assert_eq!(k.brokers, ["127.0.0.1:9092"]);
        assert_eq!(k.topics, ["syslog.raw"]);
        assert_eq!(k.group_id, "indexers");
        assert_eq!(k.max_in_flight, 500);
        assert_eq!(
            k.commit_interval,
            Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS)
        );
        assert_eq!(l.decode.timezone, chrono_tz::Europe::Berlin);
    }

    /// Each mistake names the file, line and key.
    #[test]
    fn kafka_listener_mistakes_name_their_key() {
        let k = "protocol = \"kafka\"\nbrokers = [\"b:9092\"]\ntopics = [\"t\"]\ngroup_id = \"g\"";
        for (extra, key, line) in [
            ("listen = \"127.0.0.1:0\"", "listeners[0].listen", 7),
            ("framing = \"lf\"", "listeners[0].framing", 7),
            ("max_in_flight = 0", "listeners[0].max_in_flight", 7),
            (
                "commit_interval_ms = 1",
                "listeners[0].commit_interval_ms",
                7,
            ),
        ] {
            let e = config(&format!("{k}\n{extra}")).unwrap_err();
            assert!(e.starts_with(&format!("t.toml:{line}:")), "{e}");
            assert!(e.contains(key), "{e}");
        }
        let e = config("protocol = \"kafka\"\ntopics = [\"t\"]\ngroup_id = \"g\"").unwrap_err();
        assert!(
            e.contains("listeners[0].brokers") && e.contains("missing"),
            "{e}"
        );
        let e = config("protocol = \"kafka\"\nbrokers = [\"b:1\"]\ntopics = []\ngroup_id = \"g\"")
            .unwrap_err();
        assert!(e.contains("listeners[0].topics"), "{e}");
        let e =
            config("protocol = \"udp\"\nlisten = \"127.0.0.1:0\"\ngroup_id = \"g\"").unwrap_err();
        assert!(
            e.contains("listeners[0].group_id") && e.contains("only a protocol"),
            "{e}"
        );
        let e = config("protocol = \"udp\"").unwrap_err();
        assert!(
            e.contains("listeners[0].listen") && e.contains("missing"),
            "{e}"
        );
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, "t.toml").unwrap_err().to_string()
    }

    /// A kafka listener at line 1 of `t.toml`, with `extra` after its keys
    /// (from line 6).
    fn kafka_listener(brokers: &str, topics: &str, extra: &str) -> String {
        format!(
            "[[listeners]]\nname = \"k\"\nprotocol = \"kafka\"\nbrokers = {brokers}\ntopics = {topics}\ngroup_id = \"g\"\n{extra}\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n[default_route]\nsink = \"f\"\ndocument = {{}}\n"
        )
    }

    /// A kafka listener's brokers are checked as a Kafka sink's are (one
    /// function), and its topics as Kafka checks topic names; a `^` topic is
    /// a regular expression and must compile.
    #[test]
    fn kafka_listener_brokers_and_topics_are_checked_like_kafka_does() {
        let ok = kafka_listener(
            r#"["[::1]:9092", "k1:1"]"#,
            r#"["a.B_c-9", "^syslog\\..*"]"#,
            "",
        );
        let c = Config::from_toml(&ok, "t.toml").unwrap();
        let k = c.listeners[0].kafka.as_deref().unwrap();
        assert_eq!(k.topics, ["a.B_c-9", r"^syslog\..*"]);
        let long = "t".repeat(250);
        for (brokers, topics, want) in [
            (
                r#"["nohostport"]"#,
                r#"["t"]"#,
                "t.toml:4:1: listeners[0].brokers: \"nohostport\" is not host:port (a port 1-65535)",
            ),
            (
                r#"["127.0.0.1:99999"]"#,
                r#"["t"]"#,
                "t.toml:4:1: listeners[0].brokers: \"127.0.0.1:99999\" is not host:port (a port 1-65535)",
            ),
            (
                r#"["b:0"]"#,
                r#"["t"]"#,
                "t.toml:4:1: listeners[0].brokers: \"b:0\" is not host:port (a port 1-65535)",
            ),
            (
                r#"["b:+92"]"#,
                r#"["t"]"#,
                "t.toml:4:1: listeners[0].brokers: \"b:+92\" is not host:port (a port 1-65535)",
            ),
            (
                r#"[]"#,
                r#"["t"]"#,
                "t.toml:4:1: listeners[0].brokers: at least one broker (host:port) is needed",
            ),
            (
                r#"["b:9092"]"#,
                r#"["ok", "bad topic!"]"#,
                "t.toml:5:1: listeners[0].topics[1]: \"bad topic!\": ' ' is not allowed in a Kafka topic name (letters, digits, . _ -)",
            ),
            (
                r#"["b:9092"]"#,
                r#"[".."]"#,
                "t.toml:5:1: listeners[0].topics[0]: \"..\" is not a Kafka topic name",
            ),
            (
                r#"["b:9092"]"#,
                &format!("[\"{long}\"]"),
                &format!(
                    "t.toml:5:1: listeners[0].topics[0]: \"{long}\": a Kafka topic name has 1 to 249 characters, not 250"
                ),
            ),
            (
                r#"["b:9092"]"#,
                r#"["^(unclosed"]"#,
                "t.toml:5:1: listeners[0].topics[0]: \"^(unclosed\": invalid regex (a topic starting with ^ subscribes by pattern)",
            ),
        ] {
            let e = err(&kafka_listener(brokers, topics, ""));
            assert!(
                e.starts_with(want),
                "{brokers} {topics}:\n got {e}\nwant {want}"
            );
        }
    }

    /// Socket keys a kafka listener does not take are refused, naming the key.
    #[test]
    fn kafka_listener_refuses_socket_keys_naming_them() {
        let why =
            "a kafka listener takes no socket or framing settings: records are frames already";
        for (extra, key) in [
            ("listen_backlog = 5", "listen_backlog"),
            ("max_connections = 5", "max_connections"),
            ("idle_timeout_secs = 5", "idle_timeout_secs"),
            ("frame_timeout_secs = 5", "frame_timeout_secs"),
            ("max_connections_per_peer = 5", "max_connections_per_peer"),
            ("framing = \"lf\"", "framing"),
            ("receive_buffer_bytes = 4096", "receive_buffer_bytes"),
            ("sockets = 2", "sockets"),
            ("allow = [\"10.0.0.0/8\"]", "allow"),
            (
                "[listeners.tls]\ncert_file = \"c\"\nkey_file = \"k\"",
                "tls",
            ),
        ] {
            let e = err(&kafka_listener(r#"["b:9092"]"#, r#"["t"]"#, extra));
            // A table is located at its name in the header.
            let col = if key == "tls" { 12 } else { 1 };
            assert_eq!(
                e,
                format!("t.toml:7:{col}: listeners[0].{key}: {why}"),
                "{extra}"
            );
        }
    }
}
