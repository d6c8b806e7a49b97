//! What the Elasticsearch sink sets up before its first write: which engine
//! answers (Elasticsearch 7/8, OpenSearch 1/2/3, logged once) and, with
//! `manage_template = true`, a composable index template that maps the
//! `ecs` and `flume` document shapes (and the routes' typed captures), marks
//! a data stream (`data_stream = "..."`) and names a retention policy
//! (`ilm_policy`).
//!
//! The template carries a `version`: an installed template of the same or a
//! newer version is left alone (an operator's or a newer sluice's), an older
//! one sluice wrote is replaced. One without a `version` that sluice did not
//! write (`_meta.managed_by`) is an operator's: kept, with a WARN, as
//! Logstash and Beats keep an existing template unless told to overwrite
//! it. Setup runs again on the next batch when it failed (the node
//! unreachable): the batch waits, so no index is created by dynamic
//! mapping before its template exists.
//!
//! A `data_stream` is checked before anything is installed
//! (`GET /_resolve/index/NAME`, then `GET /_data_stream/NAME`): a plain
//! index or an alias holding the name, an engine without data streams, or
//! an operator's kept template that declares no data stream would make the
//! engine write somewhere else than a data stream. Setup then fails with an
//! error only an operator can clear ([`SetupError::needs_operator`]): the
//! records are held, and the check runs again at each retry.

use std::time::Duration;

use crate::config::{ElasticsearchConfig, FieldType};

/// The version of the template this sluice writes; raise it when the
/// mappings change.
pub(crate) const TEMPLATE_VERSION: u64 = 1;

/// Bound on a setup answer kept (a template is a few KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The engine a sink writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Engine {
    pub product: Product,
    /// `major.minor.patch` as the node says it.
    pub version: String,
    pub major: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Product {
    Elasticsearch,
    OpenSearch,
}

impl Product {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Product::Elasticsearch => "Elasticsearch",
            Product::OpenSearch => "OpenSearch",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// The node did not answer (or not sensibly): try again later.
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    /// The engine refused the template: an operator must act.
    #[error("{url}: {status} {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    /// `data_stream = NAME`, but NAME is a plain index or an alias: writes
    /// would land there, not in a data stream. Held until an operator
    /// removes it (or changes the sink).
    #[error(
        "data_stream {name:?}: {holder} already holds this name, so writes would go there and not into a data stream; records are held until it is removed (or the sink writes to `index = {name:?}` instead)"
    )]
    NotADataStream { name: String, holder: String },
    /// The engine has no data streams (an Elasticsearch without its
    /// data-streams module): held until the engine or the sink changes.
    #[error(
        "data_stream {name:?}: this {engine} has no data streams ({answer}); records are held until it has (or the sink writes to an `index`)"
    )]
    NoDataStreams {
        name: String,
        /// Product and version.
        engine: String,
        /// The URL asked and its answer.
        answer: String,
    },
    /// `data_stream = NAME`, and the template of that name is kept (an
    /// operator's, or a newer version) but does not make NAME a data
    /// stream (no `data_stream`, or index patterns that miss NAME): the
    /// first write would create a plain index.
    #[error(
        "data_stream {name:?}: index template {template:?} is kept ({why}) but does not make {name:?} a data stream (it declares no `data_stream`, or its index_patterns miss the name), so the first write would create a plain index; records are held until the template does or is removed"
    )]
    TemplateWithoutDataStream {
        name: String,
        template: String,
        why: String,
    },
}

impl SetupError {
    /// Only an operator can clear it (the records wait; they are not
    /// given up on).
    pub(crate) fn needs_operator(&self) -> bool {
        matches!(
            self,
            SetupError::NotADataStream { .. }
                | SetupError::NoDataStreams { .. }
                | SetupError::TemplateWithoutDataStream { .. }
        )
    }
}

/// The engine behind `base`: `GET /` when it answers (OpenSearch says
/// `"distribution":"opensearch"`); else `GET /_nodes/_local` (an
/// Elasticsearch without its root endpoint answers `GET /` with 405), whose
/// `X-elastic-product` header names Elasticsearch.
pub(crate) async fn detect(client: &reqwest::Client, base: &str) -> Result<Engine, SetupError> {
    let base = base.trim_end_matches('/');
    let (status, headers, body) = get(client, &format!("{base}/")).await?;
    if status == 200 {
        if let Some(e) = engine_of_root(&body) {
            return Ok(e);
        }
    }
    let url = format!("{base}/_nodes/_local?filter_path=nodes.*.version");
    let (status, headers2, body) = get(client, &url).await?;
    if status != 200 {
        return Err(SetupError::Unreachable {
            url,
            message: format!("{status} {}", excerpt(&body)),
        });
    }
    let elastic = [&headers, &headers2].iter().any(|h| {
        h.get("x-elastic-product")
            .is_some_and(|v| v.as_bytes() == b"Elasticsearch")
    });
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let version = v["nodes"]
        .as_object()
        .and_then(|n| n.values().next())
        .and_then(|n| n["version"].as_str())
        .unwrap_or("")
        .to_owned();
    engine(
        if elastic {
            Product::Elasticsearch
        } else {
            Product::OpenSearch
        },
        version,
    )
    .ok_or_else(|| SetupError::Unreachable {
        url,
        message: format!("no version in {}", excerpt(&body)),
    })
}

fn engine_of_root(body: &[u8]) -> Option<Engine> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let version = &v["version"];
    let product = if version["distribution"] == "opensearch" {
        Product::OpenSearch
    } else {
        Product::Elasticsearch
    };
    engine(product, version["number"].as_str()?.to_owned())
}

fn engine(product: Product, version: String) -> Option<Engine> {
    let major = version.split('.').next()?.parse().ok()?;
    Some(Engine {
        product,
        version,
        major,
    })
}

/// Detect the engine behind `base` (logged once) and, with
/// `manage_template`, install the template. Without a template to install,
/// an engine that cannot be detected (a proxy, a stand-in) is logged and
/// written to all the same (`None`).
pub(crate) async fn run(
    sink: &str,
    config: &ElasticsearchConfig,
    client: &reqwest::Client,
    base: &str,
) -> Result<Option<Engine>, SetupError> {
    let engine = match detect(client, base).await {
        Ok(e) => e,
        Err(e) if !config.manage_template => {
            tracing::warn!(sink, error = %e, "Elasticsearch sink: cannot tell which engine this is; writing anyway");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if config.manage_template {
        // An Elasticsearch without ILM (a build without the x-pack ILM
        // module) refuses the `index.lifecycle.name` setting: the policy is
        // then named in the template's _meta only, and said so.
        let ilm = engine.product == Product::Elasticsearch
            && config.ilm_policy.is_some()
            && get(
                client,
                &format!("{}/_ilm/status", base.trim_end_matches('/')),
            )
            .await?
            .0 == 200;
        if config.ilm_policy.is_some() && !ilm {
            tracing::warn!(
                sink,
                product = engine.product.name(),
                "Elasticsearch sink: {}",
                no_ilm_text(&engine)
            );
        }
        if let Some(ds) = &config.data_stream {
            check_data_stream(client, base, &engine, ds).await?;
        }
        let name = template_name(sink, config);
        let ds = config.data_stream.as_deref();
        let done = install(client, base, &name, &template(config, &engine, ilm), ds).await?;
        let kept = match done {
            Installed::KeptUnversioned { data_stream } => {
                tracing::warn!(sink, template = %name, "Elasticsearch sink: index template {name:?} is there without a `version` and was not written by sluice: kept as it is (sluice's mappings are not installed). To let sluice manage it, delete it (or give it `version: 0`); to silence this, set `manage_template = false` or `template_name` to another name");
                (!data_stream).then(|| "no `version`, an operator's own".to_owned())
            }
            Installed::Kept {
                version,
                data_stream,
            } => (!data_stream).then(|| format!("version {version}, not older than sluice's")),
            Installed::Created | Installed::Updated(_) => None,
        };
        match (ds, kept) {
            (Some(ds), Some(why)) => {
                return Err(SetupError::TemplateWithoutDataStream {
                    name: ds.to_owned(),
                    template: name,
                    why,
                });
            }
            _ => {
                tracing::info!(sink, template = %name, version = TEMPLATE_VERSION, ?done, "Elasticsearch sink: index template");
            }
        }
    }
    tracing::info!(sink, product = ?engine.product, version = %engine.version, "Elasticsearch sink: engine detected");
    Ok(Some(engine))
}

/// What holds the name of a data stream to be (`GET /_resolve/index/NAME`,
/// which OpenSearch 2/3 and Elasticsearch 7.9+ answer alike).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    Nothing,
    DataStream,
    /// A plain index, or an alias of these indices.
    Index,
    Alias(Vec<String>),
}

/// Read a `_resolve/index` answer for `name`.
pub(crate) fn holder_of(body: &[u8], name: &str) -> Holder {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let named = |key: &str| {
        v[key]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == name))
            .cloned()
    };
    if named("data_streams").is_some() {
        Holder::DataStream
    } else if named("indices").is_some() {
        Holder::Index
    } else if let Some(alias) = named("aliases") {
        let indices = alias["indices"].as_array().map_or_else(Vec::new, |a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        });
        Holder::Alias(indices)
    } else {
        Holder::Nothing
    }
}

/// Refuse a data stream whose name a plain index or an alias holds (the
/// engine would write there, silently), or an engine without data streams.
async fn check_data_stream(
    client: &reqwest::Client,
    base: &str,
    engine: &Engine,
    name: &str,
) -> Result<(), SetupError> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/_resolve/index/{}", encode(name));
    let (status, _, body) = get(client, &url).await?;
    let holder = match status {
        200 => holder_of(&body, name),
        404 => Holder::Nothing,
        _ => {
            return Err(SetupError::Unreachable {
                url,
                message: format!("{status} {}", excerpt(&body)),
            });
        }
    };
    let holder = match holder {
        Holder::DataStream => return Ok(()),
        Holder::Index => "a plain index".to_owned(),
        Holder::Alias(indices) => format!("an alias (of {})", indices.join(", ")),
        Holder::Nothing => {
            // Nothing there yet: the engine must know data streams, or the
            // first `create` makes a plain index (or fails).
            let url = format!("{base}/_data_stream/{}", encode(name));
            let (status, _, body) = get(client, &url).await?;
            if status == 200 || status == 404 {
                return Ok(());
            }
            return Err(SetupError::NoDataStreams {
                name: name.to_owned(),
                engine: format!("{} {}", engine.product.name(), engine.version),
                answer: format!("{url}: {status} {}", excerpt(&body)),
            });
        }
    };
    Err(SetupError::NotADataStream {
        name: name.to_owned(),
        holder,
    })
}

/// The warning for an `ilm_policy` the engine cannot attach by
/// `index.lifecycle.name`, naming the engine detected.
pub(crate) fn no_ilm_text(engine: &Engine) -> String {
    match engine.product {
        Product::OpenSearch => format!(
            "OpenSearch {} has no ILM: its ISM policies name the indices they manage in their own `ism_template`; the template names `ilm_policy` in _meta only",
            engine.version
        ),
        Product::Elasticsearch => format!(
            "Elasticsearch {} has no ILM (GET /_ilm/status did not answer 200: a build without the ILM module?); the template names `ilm_policy` in _meta only, no index.lifecycle.name",
            engine.version
        ),
    }
}

/// The template's name: `template_name`, else `sluice-<sink>`.
pub(crate) fn template_name(sink: &str, config: &ElasticsearchConfig) -> String {
    config
        .template_name
        .clone()
        .unwrap_or_else(|| format!("sluice-{sink}"))
}

/// The index pattern a template covers: the index name with its date
/// fields (`%Y`, ...) as `*`, or the data stream's name.
pub(crate) fn index_pattern(index: &str) -> String {
    let mut out = String::with_capacity(index.len());
    super::bulk::expand_pattern(index, &mut out, |out, _| {
        if !out.ends_with('*') {
            out.push('*');
        }
    });
    out
}

/// The mapping type of a capture of type `t`.
fn capture_mapping(t: FieldType) -> serde_json::Value {
    let kind = match t {
        FieldType::Int | FieldType::Duration | FieldType::Bytes => "long",
        FieldType::Uint => "unsigned_long",
        FieldType::Float => "double",
        FieldType::Bool => "boolean",
        FieldType::String => "keyword",
    };
    serde_json::json!({ "type": kind })
}

/// The composable index template for `config` on `engine`.
/// `ilm`: the engine has ILM, and the template attaches `ilm_policy` by the
/// `index.lifecycle.name` setting.
pub(crate) fn template(
    config: &ElasticsearchConfig,
    engine: &Engine,
    ilm: bool,
) -> serde_json::Value {
    let keyword = || serde_json::json!({"type": "keyword", "ignore_above": 1024});
    let mut captures = serde_json::Map::new();
    for (name, t) in &config.captures {
        // OpenSearch has no unsigned_long before 2.8: a long then.
        let m =
            if *t == FieldType::Uint && engine.product == Product::OpenSearch && engine.major < 3 {
                serde_json::json!({"type": "long"})
            } else {
                capture_mapping(*t)
            };
        captures.insert(name.clone(), m);
    }
    let name_code =
        || serde_json::json!({"properties": {"code": {"type": "integer"}, "name": keyword()}});
    let mappings = serde_json::json!({
        // Untyped captures and Flume headers are strings: keyword, not
        // text plus keyword.
        "dynamic_templates": [
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": keyword()}}
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "text"},
            "host": {"properties": {"hostname": keyword()}},
            "process": {"properties": {"name": keyword(), "pid": {"type": "long"}}},
            "log": {"properties": {"syslog": {"properties": {
                "facility": name_code(),
                "severity": name_code(),
                "hostname": keyword(),
                "appname": keyword(),
                "procid": keyword(),
                "msgid": keyword(),
                "structured_data": {"type": "object"}
            }}}},
            "event": {"properties": {"created": {"type": "date"}, "original": {"type": "text", "index": false}}},
            "sluice": {"properties": {
                "route": keyword(),
                "protocol": keyword(),
                "valid": {"type": "boolean"},
                "captures": {"properties": captures}
            }},
            // Flume's logstash shape.
            "@message": {"type": "text"},
            "@source_host": keyword(),
            "@fields": {"type": "object"}
        }
    });
    let mut settings = serde_json::Map::new();
    if let Some(policy) = config.ilm_policy.as_ref().filter(|_| ilm) {
        // Elasticsearch attaches an ILM policy by this index setting;
        // OpenSearch's ISM policies name the indices they manage in their
        // own `ism_template` instead.
        settings.insert("index.lifecycle.name".into(), policy.clone().into());
    }
    let index = config.data_stream.as_deref().unwrap_or(&config.index);
    let mut t = serde_json::json!({
        "index_patterns": [index_pattern(index)],
        "priority": 200,
        "version": TEMPLATE_VERSION,
        "_meta": {"managed_by": "sluice", "ilm_policy": config.ilm_policy},
        "template": {"settings": settings, "mappings": mappings}
    });
    if config.data_stream.is_some() {
        t["data_stream"] = serde_json::json!({});
    }
    t
}

/// What [`install`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Installed {
    Created,
    /// An older version sluice wrote was replaced.
    Updated(u64),
    /// The same or a newer version is there: left alone.
    /// `data_stream`: it makes the sink's data stream one (see
    /// [`makes_data_stream`]).
    Kept {
        version: u64,
        data_stream: bool,
    },
    /// A template of that name without a `version`, not written by sluice
    /// (an operator's own): left alone, as Logstash's `template_overwrite`
    /// and Beats' `setup.template.overwrite` (both `false` by default) do.
    KeptUnversioned {
        data_stream: bool,
    },
}

/// Does template `t` make `name` a data stream: it declares one and an
/// index pattern (`*` matching any run) matches `name`? `true` without a
/// data stream to make.
fn makes_data_stream(t: &serde_json::Value, name: Option<&str>) -> bool {
    let Some(name) = name else { return true };
    let declares = t.get("data_stream").is_some_and(|d| !d.is_null());
    let patterns = t["index_patterns"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    declares
        && patterns
            .iter()
            .filter_map(serde_json::Value::as_str)
            .any(|p| glob(p, name))
}

/// `pattern` (`*` = any run of characters) matches all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What an installed template answer (`GET /_index_template/NAME`) says.
/// `data_stream`: the sink's.
fn installed_of(body: &[u8], data_stream: Option<&str>) -> Option<Installed> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let t = &v["index_templates"].get(0)?["index_template"];
    Some(match t["version"].as_u64() {
        Some(version) if version >= TEMPLATE_VERSION => Installed::Kept {
            version,
            data_stream: makes_data_stream(t, data_stream),
        },
        Some(v) => Installed::Updated(v),
        None if t["_meta"]["managed_by"] == "sluice" => Installed::Updated(0),
        None => Installed::KeptUnversioned {
            data_stream: makes_data_stream(t, data_stream),
        },
    })
}

/// Install the template unless the same or a newer version, or an
/// unversioned one of the operator's, is there (`data_stream`: the sink's,
/// which a kept template must make a data stream).
pub(crate) async fn install(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    template: &serde_json::Value,
    data_stream: Option<&str>,
) -> Result<Installed, SetupError> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/_index_template/{}", encode(name));
    let (status, _, body) = get(client, &url).await?;
    let installed = if status == 200 {
        installed_of(&body, data_stream)
    } else {
        None
    };
    if let Some(kept @ (Installed::Kept { .. } | Installed::KeptUnversioned { .. })) = installed {
        return Ok(kept);
    }
    let answer = send(
        client
            .put(&url)
            .header("Content-Type", "application/json")
            .body(template.to_string()),
        &url,
    )
    .await?;
    let status = answer.status().as_u16();
    let body = read_capped(answer).await;
    if !(200..300).contains(&status) {
        return Err(SetupError::Refused {
            url,
            status,
            message: excerpt(&body),
        });
    }
    Ok(installed.unwrap_or(Installed::Created))
}

/// Send `req` to `url`; no answer is `Unreachable`.
async fn send(req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, SetupError> {
    req.send().await.map_err(|e| SetupError::Unreachable {
        url: url.to_owned(),
        message: e.to_string(),
    })
}

async fn get(
    client: &reqwest::Client,
    url: &str,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), SetupError> {
    let answer = send(client.get(url).timeout(Duration::from_secs(10)), url).await?;
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    Ok((status, headers, read_capped(answer).await))
}

/// The answer's body, at most [`MAX_ANSWER_BYTES`].
async fn read_capped(mut answer: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if room <= chunk.len() {
            break;
        }
    }
    body
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

fn encode(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_patterns_replace_date_fields_with_one_star() {
        assert_eq!(index_pattern("syslog-%Y.%m.%d"), "syslog-*.*.*");
        assert_eq!(index_pattern("logs-%Y%m%d%H-x"), "logs-*-x");
        assert_eq!(index_pattern("logs-sluice-default"), "logs-sluice-default");
        assert_eq!(index_pattern("a%%b"), "a%b");
    }

    #[test]
    fn the_engine_is_read_from_the_root_answer() {
        let os = br#"{"name":"n0","version":{"distribution":"opensearch","number":"3.6.0"}}"#;
        assert_eq!(
            engine_of_root(os),
            Some(Engine {
                product: Product::OpenSearch,
                version: "3.6.0".into(),
                major: 3
            })
        );
        let es = br#"{"name":"n0","version":{"number":"8.19.21","build_flavor":"default"}}"#;
        assert_eq!(
            engine_of_root(es).map(|e| (e.product, e.major)),
            Some((Product::Elasticsearch, 8))
        );
        assert_eq!(engine_of_root(b"{\"error\":\"x\"}"), None);
    }

    /// `_resolve/index` as OpenSearch 3.6 and Elasticsearch 8.19 answered
    /// it for a plain index, an alias, a data stream and nothing.
    #[test]
    fn what_holds_a_name_is_read_from_resolve_index() {
        let plain = br#"{"indices":[{"name":"plainidx","attributes":["open"]}],"aliases":[],"data_streams":[]}"#;
        assert_eq!(holder_of(plain, "plainidx"), Holder::Index);
        let alias = br#"{"indices":[],"aliases":[{"name":"aliasname","indices":["realidx"]}],"data_streams":[]}"#;
        assert_eq!(
            holder_of(alias, "aliasname"),
            Holder::Alias(vec!["realidx".into()])
        );
        let ds = br#"{"indices":[],"aliases":[],"data_streams":[{"name":"dsx","backing_indices":[".ds-dsx-000001"],"timestamp_field":"@timestamp"}]}"#;
        assert_eq!(holder_of(ds, "dsx"), Holder::DataStream);
        let none = br#"{"indices":[],"aliases":[],"data_streams":[]}"#;
        assert_eq!(holder_of(none, "x"), Holder::Nothing);
        // Another name in the answer is not this one.
        assert_eq!(holder_of(plain, "other"), Holder::Nothing);
    }

    /// The ILM warning names the engine detected, not always OpenSearch.
    #[test]
    fn the_no_ilm_warning_names_the_engine_detected() {
        let es = Engine {
            product: Product::Elasticsearch,
            version: "8.19.21".into(),
            major: 8,
        };
        let text = no_ilm_text(&es);
        assert!(
            text.starts_with("Elasticsearch 8.19.21 has no ILM"),
            "{text}"
        );
        assert!(!text.contains("OpenSearch"), "{text}");
        let os = Engine {
            product: Product::OpenSearch,
            version: "3.6.0".into(),
            major: 3,
        };
        let text = no_ilm_text(&os);
        assert!(text.starts_with("OpenSearch 3.6.0 has no ILM"), "{text}");
        assert!(text.contains("ISM"), "{text}");
        assert!(!text.contains("Elasticsearch"), "{text}");
    }

    /// An unversioned template not written by sluice is an operator's and
    /// kept (as Logstash and Beats keep an existing template); one sluice
    /// wrote, or an older version, is replaced.
    #[test]
    fn an_unversioned_template_of_the_operators_is_kept() {
        let answer =
            |t: &str| format!(r#"{{"index_templates":[{{"name":"t","index_template":{t}}}]}}"#);
        let own = answer(r#"{"index_patterns":["x"]}"#);
        assert_eq!(
            installed_of(own.as_bytes(), None),
            Some(Installed::KeptUnversioned { data_stream: true })
        );
        assert_eq!(
            installed_of(own.as_bytes(), Some("x")),
            Some(Installed::KeptUnversioned { data_stream: false })
        );
        let own_ds = answer(r#"{"index_patterns":["logs-*"],"data_stream":{}}"#);
        assert_eq!(
            installed_of(own_ds.as_bytes(), Some("logs-a-b")),
            Some(Installed::KeptUnversioned { data_stream: true })
        );
        let ours = answer(r#"{"index_patterns":["x"],"_meta":{"managed_by":"sluice"}}"#);
        assert_eq!(
            installed_of(ours.as_bytes(), None),
            Some(Installed::Updated(0))
        );
        // A current template for another data stream (another sluice's
        // sink of the same name) does not make this one.
        let newer = answer(&format!(
            r#"{{"version":{},"index_patterns":["logs-other"],"data_stream":{{}}}}"#,
            TEMPLATE_VERSION + 1
        ));
        assert_eq!(
            installed_of(newer.as_bytes(), Some("logs-mine")),
            Some(Installed::Kept {
                version: TEMPLATE_VERSION + 1,
                data_stream: false
            })
        );
        assert_eq!(installed_of(br#"{"index_templates":[]}"#, None), None);
    }

    #[test]
    fn index_patterns_match_like_the_engines_wildcards() {
        assert!(glob("logs-sluice-default", "logs-sluice-default"));
        assert!(!glob("logs-sluice-default", "logs-sluice-default2"));
        assert!(glob("logs-*", "logs-a-b"));
        assert!(glob("*-b", "logs-a-b"));
        assert!(glob("l*a*b", "logs-a-b"));
        assert!(glob("*", ""));
        assert!(!glob("logs-*-x", "logs-a-b"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn a_held_setup_says_what_holds_the_name_and_needs_an_operator() {
        let e = SetupError::NotADataStream {
            name: "logs-a-b".into(),
            holder: "a plain index".into(),
        };
        assert!(e.needs_operator());
        assert!(
            e.to_string()
                .starts_with("data_stream \"logs-a-b\": a plain index already holds this name"),
            "{e}"
        );
        let unreachable = SetupError::Unreachable {
            url: "http://n".into(),
            message: "refused".into(),
        };
        assert!(!unreachable.needs_operator());
    }
}
