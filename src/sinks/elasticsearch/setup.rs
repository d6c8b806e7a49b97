//! What the Elasticsearch sink sets up before its first write: which engine
//! answers (Elasticsearch 7/8, OpenSearch 1/2/3, logged once) and, with
//! `manage_template = true`, a composable index template that maps the
//! `ecs` and `flume` document shapes (and the routes' typed captures), marks
//! a data stream (`data_stream = "..."`) and names a retention policy
//! (`ilm_policy`).
//!
//! The template carries a `version`: an installed template of the same or a
//! newer version is left alone (an operator's or a newer sluice's), an older
//! one is replaced. Setup runs again on the next batch when it failed (the
//! node unreachable): the batch waits, so no index is created by dynamic
//! mapping before its template exists.

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
            tracing::warn!(sink, product = ?engine.product, "Elasticsearch sink: no ILM here (OpenSearch's ISM policies name their indices themselves); the template names the policy in _meta only");
        }
        let name = template_name(sink, config);
        let done = install(client, base, &name, &template(config, &engine, ilm)).await?;
        tracing::info!(sink, template = %name, version = TEMPLATE_VERSION, ?done, "Elasticsearch sink: index template");
    }
    tracing::info!(sink, product = ?engine.product, version = %engine.version, "Elasticsearch sink: engine detected");
    Ok(Some(engine))
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
    /// An older version was replaced.
    Updated(u64),
    /// The same or a newer version is there: left alone.
    Kept(u64),
}

/// Install the template unless the same or a newer version is there.
pub(crate) async fn install(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    template: &serde_json::Value,
) -> Result<Installed, SetupError> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/_index_template/{}", encode(name));
    let (status, _, body) = get(client, &url).await?;
    let installed = if status == 200 {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        v["index_templates"]
            .get(0)
            .map(|t| t["index_template"]["version"].as_u64().unwrap_or(0))
    } else {
        None
    };
    if let Some(v) = installed.filter(|&v| v >= TEMPLATE_VERSION) {
        return Ok(Installed::Kept(v));
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
    Ok(installed.map_or(Installed::Created, Installed::Updated))
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
}
