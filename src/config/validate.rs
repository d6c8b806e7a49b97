//! The validator: the whole file, section by section.

use super::*;

impl Validator<'_, '_> {
    pub(super) fn err(&self, path: &[Seg], message: impl AsRef<str>) -> ConfigError {
        self.locator.error(path, message.as_ref())
    }

    /// Refuses the first of `keys` (each with whether it is set) that is
    /// set, at that key, saying `why`: keys a table takes only with some
    /// other setting.
    pub(super) fn refuse_set(
        &self,
        base: &[Seg],
        keys: &[(&'static str, bool)],
        why: &str,
    ) -> Result<(), ConfigError> {
        match keys.iter().find(|(_, set)| *set) {
            Some((k, _)) => Err(self.err(&at(base, k), why)),
            None => Ok(()),
        }
    }

    pub(super) fn timezone(&self, path: &[Seg], name: &str) -> Result<Tz, ConfigError> {
        name.parse::<Tz>().map_err(|_| {
            self.err(
                path,
                format!("unknown timezone {name:?} (use an IANA name such as \"UTC\" or \"Europe/Berlin\")"),
            )
        })
    }

    pub(super) fn addr(&self, path: &[Seg], s: &str) -> Result<SocketAddr, ConfigError> {
        s.parse::<SocketAddr>().map_err(|_| {
            self.err(
                path,
                format!(
                    "{s:?} is not an IP:port address (e.g. \"127.0.0.1:5514\" or \"[::]:5514\")"
                ),
            )
        })
    }

    pub(super) fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let timezone = match &raw.timezone {
            Some(tz) => self.timezone(&[key("timezone")], tz)?,
            None => Tz::UTC,
        };
        let (admin, admin_access, unhealthy_after) = self.admin(raw.admin)?;

        let listeners = self.listeners(raw.listeners, timezone)?;

        // Spill logs and default dead-letter files live under it.
        let data_dir = self.resolve(
            raw.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        );
        let mut sinks = Vec::new();
        let mut sink_names = HashSet::new();
        for (i, s) in raw.sinks.into_iter().enumerate() {
            let base = [key("sinks"), Seg::Index(i)];
            let sink = self.sink(&base, s, &data_dir)?;
            if !sink_names.insert(sink.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate sink name {:?}", sink.name),
                ));
            }
            sinks.push(sink);
        }

        let grok = self.grok(raw.grok)?;
        let mut routes = Vec::new();
        let mut route_names = HashSet::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let base = [key("routes"), Seg::Index(i)];
            if !route_names.insert(r.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate route name {:?}", r.name),
                ));
            }
            routes.push(self.route(&base, r, &sinks, &grok)?);
        }
        let catch_all = routes
            .iter()
            .any(|r| r.conditions.is_empty() && r.pattern.is_none());
        if let Some(d) = raw.default_route {
            let base = [key("default_route")];
            let name = d.name.unwrap_or_else(|| "default".to_owned());
            if route_names.contains(&name) {
                return Err(self.err(&at(&base, "name"), format!("duplicate route name {name:?}")));
            }
            routes.push(self.route(
                &base,
                RawRoute {
                    name,
                    sink: d.sink,
                    is_final: true,
                    facility: None,
                    severity: None,
                    hostname: None,
                    appname: None,
                    msgid: None,
                    pattern: None,
                    metric: d.metric,
                    document: d.document,
                    queue: d.queue,
                },
                &sinks,
                &grok,
            )?);
            if let Some(last) = routes.last_mut() {
                last.is_default = true;
            }
        } else if !catch_all {
            return Err(self.err(
                &[key("routes")],
                "events that match no route would go nowhere: add a [default_route] or a route without conditions",
            ));
        }

        self.raw_needs_frames(&routes, &listeners)?;

        // A managed template maps the typed captures of the routes that
        // write documents to the sink.
        for r in &routes {
            if let (OutputConfig::Document(_), Some(sink)) = (&r.output, sinks.get_mut(r.sink)) {
                if let SinkKind::Elasticsearch(es) = &mut sink.kind {
                    es.captures.extend(r.capture_types.iter().cloned());
                }
            }
        }

        Ok(Config {
            origin: self.locator.origin.to_owned(),
            timezone,
            shutdown_timeout: Duration::from_secs(
                raw.shutdown_timeout_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            ),
            data_dir,
            base_dir: self.locator.base.clone(),
            admin,
            admin_access,
            unhealthy_after,
            listeners,
            sinks,
            routes,
        })
    }

    /// The raw envelope is one frame: a route writing it and a listener
    /// that joins frames into events cannot meet (joining belongs on the
    /// indexer's Kafka listener).
    fn raw_needs_frames(
        &self,
        routes: &[RouteConfig],
        listeners: &[ListenerConfig],
    ) -> Result<(), ConfigError> {
        let Some(route) = routes
            .iter()
            .find(|r| matches!(r.output, OutputConfig::Raw))
        else {
            return Ok(());
        };
        let Some(i) = listeners.iter().position(|l| l.multiline.is_some()) else {
            return Ok(());
        };
        let listener = [key("listeners"), Seg::Index(i)];
        let multiline = at(&listener, "multiline");
        let path = if self.locator.offset_of(&multiline).is_some() {
            multiline
        } else {
            listener.to_vec()
        };
        Err(self.err(
            &path,
            format!(
                "listener {:?} joins multi-line events, but route {:?} writes the raw envelope (one Kafka record per frame): join on the indexer's Kafka listener instead, or give the route a document payload",
                listeners[i].name, route.name
            ),
        ))
    }

    /// Files named in the config are relative to the config file's
    /// directory (the working directory for the default config).
    pub(super) fn config_dir(&self) -> PathBuf {
        self.locator.base.clone()
    }

    /// A path from the config: relative to [`Self::config_dir`].
    pub(super) fn resolve(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() || self.locator.base.as_os_str().is_empty() {
            path
        } else {
            self.locator.base.join(path)
        }
    }

    /// The grok library: built-ins, then pattern files, then inline patterns.
    pub(super) fn grok(&self, raw: Option<RawGrok>) -> Result<Library, ConfigError> {
        let mut lib = Library::default();
        let Some(raw) = raw else {
            return Ok(lib);
        };
        let base = [key("grok")];
        let dir = self.config_dir();
        let mut custom = HashSet::new();
        for (i, file) in raw.pattern_files.iter().enumerate() {
            let mut path = at(&base, "pattern_files");
            path.push(Seg::Index(i));
            let full = dir.join(file);
            let text = std::fs::read_to_string(&full)
                .map_err(|e| self.err(&path, format!("cannot read {}: {e}", full.display())))?;
            let names = lib.define_file(&text).map_err(|(line, msg)| {
                self.err(&path, format!("{}:{line}: {msg}", full.display()))
            })?;
            custom.extend(names);
        }
        for (name, pattern) in &raw.patterns {
            if !crate::grok::valid_name(name) {
                return Err(self.err(
                    &at(&base, "patterns"),
                    format!("{name:?} is not a pattern name ([A-Za-z0-9_])"),
                ));
            }
            lib.define(name, pattern);
            custom.insert(name.clone());
        }
        lib.check(&custom).map_err(|(name, e)| {
            let path = if raw.patterns.contains_key(&name) {
                at(&at(&base, "patterns"), &name)
            } else {
                at(&base, "pattern_files")
            };
            self.err(&path, format!("pattern {name}: {e}"))
        })?;
        Ok(lib)
    }

    /// `[admin]`: `(listen address, access, unhealthy_after)`; no table is the defaults.
    fn admin(
        &self,
        raw: Option<RawAdmin>,
    ) -> Result<(Option<SocketAddr>, AdminAccess, Duration), ConfigError> {
        let unhealthy_after = match raw.as_ref().and_then(|a| a.unhealthy_after_secs) {
            None => Duration::from_secs(DEFAULT_UNHEALTHY_AFTER_SECS),
            Some(0) => {
                return Err(self.err(
                    &[key("admin"), key("unhealthy_after_secs")],
                    "must be at least 1",
                ));
            }
            Some(s) => Duration::from_secs(s),
        };
        let admin_access = match &raw {
            Some(a) => {
                if a.token.as_deref() == Some("") {
                    return Err(self.err(
                        &[key("admin"), key("token")],
                        "must not be empty (leave it out for no token)",
                    ));
                }
                AdminAccess {
                    token: a.token.clone(),
                    allowed_hosts: a.allowed_hosts.clone(),
                }
            }
            None => AdminAccess::default(),
        };
        let admin = match raw {
            Some(RawAdmin { enabled: false, .. }) => None,
            Some(RawAdmin {
                listen: Some(l), ..
            }) => Some(self.addr(&[key("admin"), key("listen")], &l)?),
            _ => Some(self.addr(&[key("admin")], DEFAULT_ADMIN_LISTEN)?),
        };
        Ok((admin, admin_access, unhealthy_after))
    }
}
