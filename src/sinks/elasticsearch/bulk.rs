//! The `_bulk` request and answer: documents of a batch as items (index
//! name by the event's hour, a deterministic `_id`), request bodies split
//! by a byte bound, and what an answer says of each item.

use crate::record::{Record, Slab};
use crate::text::{civil_from_days, push_hex, write_json_str};

use super::Answer;

/// One document of a batch, ready to send.
pub struct Item<'a> {
    /// The index name; items of a batch that fall in the same hour borrow
    /// the same one.
    pub index: &'a str,
    /// The `_id`'s 16 bytes (written as 32 hex digits).
    pub id: Option<[u8; 16]>,
    pub source: &'a str,
    /// The document with its action line and LF as the encoder wrote
    /// them for this sink (the slab and the range in it), if it did.
    pub framed: Option<(
        &'a std::sync::Arc<crate::record::Slab>,
        std::ops::Range<usize>,
    )>,
}

/// The index name of each run of `batch`'s records that fall in the same
/// hour, with the hour. Index names change at most hourly (`%H` is the
/// finest field), so a run's items borrow one name (not an `Arc` each: two
/// atomic operations per document).
pub(crate) fn hour_names(pattern: &str, batch: &[Record]) -> Vec<(i64, String)> {
    let mut names: Vec<(i64, String)> = Vec::new();
    for r in batch {
        let hour = hour_of(r);
        if names.last().is_none_or(|(h, _)| *h != hour) {
            names.push((hour, index_name(pattern, r.time_nanos)));
        }
    }
    names
}

pub(super) fn hour_of(r: &Record) -> i64 {
    r.time_nanos.div_euclid(3_600_000_000_000)
}

/// `batch` as `_bulk` items, each with its run's name from `names`
/// ([`hour_names`] of the same batch), with `ids` its `_id`, and its
/// framed bytes when the encoder wrote them with `framing` (the sink's).
pub(crate) fn batch_items<'a>(
    batch: &'a [Record],
    names: &'a [(i64, String)],
    ids: bool,
    framing: u64,
) -> Vec<Item<'a>> {
    batch_items_into(batch, names, ids, framing, Vec::new())
}

/// [`batch_items`] written into `items` (emptied first; its allocation is
/// reused when large enough).
pub(crate) fn batch_items_into<'a>(
    batch: &'a [Record],
    names: &'a [(i64, String)],
    ids: bool,
    framing: u64,
    mut items: Vec<Item<'a>>,
) -> Vec<Item<'a>> {
    items.clear();
    let mut run = 0;
    items.extend(batch.iter().map(|r| {
        if names.get(run).is_some_and(|(h, _)| *h != hour_of(r)) {
            run += 1;
        }
        Item {
            index: names.get(run).map_or("", |(_, name)| name.as_str()),
            id: ids.then(|| r.key.unwrap_or_else(|| document_hash(&r.payload))),
            source: &r.payload,
            framed: r.payload.framed(framing),
        }
    }));
    items
}

/// The most items a kept item list has room for (a batch of 16,384; the
/// default `batch_max_events` is 5,000): a larger one is not kept.
pub(crate) const MAX_KEPT_ITEMS: usize = 16 * 1024;

/// An item list emptied of its items and of their borrows, its allocation
/// kept: collected in place (the same layout), so nothing is allocated or
/// copied.
#[allow(clippy::unnecessary_filter_map)] // `filter` cannot change the lifetime
pub(crate) fn recycle_items<'b>(items: Vec<Item<'_>>) -> Vec<Item<'b>> {
    items.into_iter().filter_map(|_| None).collect()
}

/// The first 300 characters of an answer, for a log line (noting that
/// it was cut at its cap).
pub(super) fn short(answer: &crate::sinks::CappedBody) -> String {
    let mut text: String = String::from_utf8_lossy(&answer.bytes)
        .chars()
        .take(300)
        .collect();
    if answer.truncated {
        text.push_str(" [answer cut at its cap]");
    }
    text
}

/// How much of an answer is kept: of a failure, what an error quotes; of
/// a 2xx, room for every item of the request with its error (the filtered
/// answer is about 25 bytes per item, a few hundred with an error).
pub(super) fn answer_cap(success: bool, items: usize) -> usize {
    if success {
        crate::sinks::MAX_ERROR_BODY_BYTES.saturating_add(items.saturating_mul(4096))
    } else {
        crate::sinks::MAX_ERROR_BODY_BYTES
    }
}

/// The parts of a `_bulk` answer the sink reads: each item's status and,
/// for a failure, the error's type and reason. Everything else (`took`,
/// `_index`, `_shards`, ...) is skipped without being built.
#[derive(serde::Deserialize)]
pub(super) struct BulkAnswer {
    items: Vec<BulkItem>,
}

/// One item: an object with one key, the action (`create` here; the others
/// are accepted so an answer is read whatever it names).
#[derive(serde::Deserialize)]
pub(super) struct BulkItem {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: Option<ItemResult>,
}

#[derive(serde::Deserialize)]
pub(super) struct ItemResult {
    #[serde(default)]
    status: u16,
    error: Option<ItemError>,
}

#[derive(serde::Deserialize)]
pub(super) struct ItemError {
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
}

/// Whether a `_bulk` answer says at its top that no item failed:
/// Elasticsearch writes `"errors":false` (before `"items"`) only when every
/// action succeeded, and then the items need not be read — parsing them was
/// a tenth of sluice's CPU at full speed. Anything else is read item by item.
pub(super) fn all_succeeded(body: &[u8]) -> bool {
    let head = body.get(..body.len().min(ANSWER_HEAD)).unwrap_or_default();
    head.starts_with(b"{")
        && memchr::memmem::find(head, b"\"items\"").is_some_and(|items| {
            memchr::memmem::find(head.get(..items).unwrap_or_default(), b"\"errors\":false")
                .is_some()
        })
}

/// The body of a `_bulk` answer, at most `cap` bytes of it read (beyond,
/// it is discarded with the connection, and marked as cut). Of a success
/// whose head says that no item failed ([`all_succeeded`]) only the head
/// is kept: the items (a line per document, megabytes for a full batch)
/// are read off the connection and dropped, not gathered into one buffer
/// that nobody reads. A body cut short by an error is what arrived before
/// it.
pub(super) async fn answer_body(
    mut response: reqwest::Response,
    success: bool,
    cap: usize,
) -> crate::sinks::CappedBody {
    if !success {
        return crate::sinks::read_capped(response, cap).await;
    }
    let mut body = crate::sinks::CappedBody::new(cap);
    let mut read = 0usize;
    let mut head_read = false;
    let mut keep = true;
    while let Ok(Some(chunk)) = response.chunk().await {
        read = read.saturating_add(chunk.len());
        if !keep {
            if read > cap {
                break;
            }
            continue;
        }
        // Until the head is read, only what it needs: the first chunk is
        // often the whole answer, items and all.
        let mut rest: &[u8] = &chunk;
        if !head_read {
            let need = ANSWER_HEAD.saturating_sub(body.bytes.len());
            let (head, tail) = rest.split_at(need.min(rest.len()));
            if !body.push(head) {
                break;
            }
            rest = tail;
            if body.bytes.len() >= ANSWER_HEAD {
                head_read = true;
                keep = !all_succeeded(&body.bytes);
            }
        }
        if keep && !rest.is_empty() && !body.push(rest) {
            break;
        }
    }
    body
}

/// What a `_bulk` answer is asked to keep (Elasticsearch's response
/// filtering): whether any item failed, each item's status and error in
/// order, and a refused request's error. An item's `_index`, `_id`,
/// `_version`, `_shards`, `_seq_no`... are not read: Elasticsearch
/// answered about 200 bytes per document of which 25 are kept.
pub(super) const BULK_FILTER_PATH: &str = "errors,error,status,items.*.status,items.*.error";

/// The `_bulk` URL of the node at `base`, with the answer's filter and
/// the ingest pipeline (percent-encoded: a name may hold `&`, `#`, ` `).
pub(super) fn bulk_url(base: &reqwest::Url, pipeline: Option<&str>) -> reqwest::Url {
    let mut query = format!("filter_path={BULK_FILTER_PATH}");
    if let Some(p) = pipeline {
        query.push_str("&pipeline=");
        query.extend(form_urlencoded::byte_serialize(p.as_bytes()));
    }
    crate::sinks::http::endpoint(base, "_bulk", &query)
}

/// How much of an answer [`all_succeeded`] looks at.
pub(super) const ANSWER_HEAD: usize = 256;

/// Read a 2xx `_bulk` answer item by item; `Err` when it is not a
/// `_bulk` answer for `chunk` (not JSON, no `items`, not one per item).
pub(super) fn read_items(body: &[u8], chunk: &[usize]) -> Result<Answer, String> {
    let mut answer = Answer {
        retry: Vec::new(),
        rejected: Vec::new(),
    };
    if all_succeeded(body) {
        return Ok(answer);
    }
    let items = serde_json::from_slice::<BulkAnswer>(body)
        .map_err(|e| format!("not a _bulk answer ({e})"))?
        .items;
    if items.len() != chunk.len() {
        return Err(format!(
            "not a _bulk answer for this request ({} items answered, {} sent)",
            items.len(),
            chunk.len()
        ));
    }
    for (&i, item) in chunk.iter().zip(&items) {
        let status = item.create.as_ref().map_or(0, |r| r.status);
        let reason = || {
            let e = item.create.as_ref().and_then(|r| r.error.as_ref());
            format!(
                "{status} {}: {}",
                e.and_then(|e| e.kind.as_deref()).unwrap_or("error"),
                e.and_then(|e| e.reason.as_deref()).unwrap_or("")
            )
        };
        match status {
            200..=299 => {}
            // create of an id that exists: an id is its record's own (route
            // and frame number, unique per frame), so the document was
            // stored by an earlier attempt — perhaps one whose answer was
            // lost, or a batch the worker resent.
            409 => {}
            429 | 500..=599 => answer.retry.push((i, reason())),
            // A write block (index.blocks.write, the flood-stage
            // read_only_allow_delete, a closed index's block): the operator
            // lifts it; held and retried, shown on /health, not refused.
            403 if item
                .create
                .as_ref()
                .and_then(|r| r.error.as_ref())
                .and_then(|e| e.kind.as_deref())
                == Some("cluster_block_exception") =>
            {
                answer.retry.push((i, reason()))
            }
            _ => answer.rejected.push((i, reason())),
        }
    }
    Ok(answer)
}

/// The NDJSON body for `chunk`: an action line and the document per item,
/// every line ending in `\n`. Always `create`: with an `_id` a resend
/// cannot duplicate, without one Elasticsearch generates it, and data
/// streams accept nothing else.
pub fn bulk_body(items: &[Item<'_>], chunk: &[usize]) -> Vec<u8> {
    bulk_body_into(items, chunk, Vec::new())
}

/// [`bulk_body`] written into `buffer` (emptied first; its allocation is
/// reused when large enough).
pub(crate) fn bulk_body_into(items: &[Item<'_>], chunk: &[usize], buffer: Vec<u8>) -> Vec<u8> {
    let size: usize = chunk
        .iter()
        .filter_map(|&i| items.get(i))
        .map(|it| it.source.len() + it.index.len() + 80)
        .sum();
    // An empty Vec<u8> is valid UTF-8.
    let mut body = String::from_utf8(crate::sinks::body_buffer(buffer, size)).unwrap_or_default();
    // The action's start, written once per index (a batch's items share
    // their hour's index).
    let mut action = String::new();
    let mut action_index: Option<&str> = None;
    for &i in chunk {
        let Some(item) = items.get(i) else { continue };
        if action_index.is_none_or(|a| !std::ptr::eq(a, item.index)) {
            action.clear();
            push_action_start(&mut action, item.index);
            action_index = Some(item.index);
        }
        body.push_str(&action);
        push_action_end(&mut body, item.id.as_ref());
        // The document is one line of JSON already (the encoder escapes
        // newlines inside strings).
        body.push_str(item.source);
        body.push('\n');
    }
    body.into_bytes()
}

/// An action line's start: `{"create":{"_index":"NAME"`. Always `create`:
/// with an `_id` a resend cannot duplicate, without one Elasticsearch
/// generates it, and data streams accept nothing else.
fn push_action_start(out: &mut String, index: &str) {
    out.push_str("{\"create\":{\"_index\":");
    write_json_str(out, index);
}

/// The rest of an action line: the `_id` if any, the closing braces, LF.
fn push_action_end(out: &mut String, id: Option<&[u8; 16]>) {
    if let Some(id) = id {
        out.push_str(",\"_id\":\"");
        push_hex(out, id);
        out.push('"');
    }
    out.push_str("}}\n");
}

/// The action lines of one route's documents, written by the encoder
/// before each document (so a batch's documents and their actions are one
/// run of bytes: see [`crate::record::Payload`]), exactly as
/// [`bulk_body_into`] writes them. The start of the line is kept for the
/// hour it names.
pub(crate) struct ActionLines {
    index: String,
    ids: bool,
    framing: u64,
    hour: Option<i64>,
    start: String,
}

impl ActionLines {
    pub(crate) fn new(route: &crate::config::BulkRoute) -> ActionLines {
        ActionLines {
            index: route.index.clone(),
            ids: route.ids,
            framing: route.framing(),
            hour: None,
            start: String::new(),
        }
    }

    /// What records framed by these lines carry.
    pub(crate) fn framing(&self) -> u64 {
        self.framing
    }

    /// Write the action line of a document at `time_nanos` with `key`
    /// into `out`; `false` (nothing written) when the sink wants `_id`s
    /// and the document has no key (the sink hashes the document then).
    pub(crate) fn write(
        &mut self,
        out: &mut String,
        time_nanos: i64,
        key: Option<&[u8; 16]>,
    ) -> bool {
        let hour = time_nanos.div_euclid(3_600_000_000_000);
        if self.hour != Some(hour) {
            // Kept with the `_id`'s key: three appends a document.
            self.start.clear();
            push_action_start(&mut self.start, &index_name(&self.index, time_nanos));
            if self.ids {
                self.start.push_str(",\"_id\":\"");
            }
            self.hour = Some(hour);
        }
        match (self.ids, key) {
            (true, Some(id)) => {
                out.push_str(&self.start);
                push_hex(out, id);
                out.push_str("\"}}\n");
            }
            (true, None) => return false,
            (false, _) => {
                out.push_str(&self.start);
                out.push_str("}}\n");
            }
        }
        true
    }
}

/// The body for `chunk` as runs of the encoder's own bytes, when every
/// item was framed by the encoder for this sink: items that follow each
/// other in a slab are one run. `None` (the body is then written by
/// [`bulk_body_into`]) when an item was not, or when the runs are so short
/// that a vectored write per few of them would cost more than a copy.
pub(crate) fn bulk_runs(items: &[Item<'_>], chunk: &[usize]) -> Option<Vec<bytes::Bytes>> {
    let mut runs: Vec<bytes::Bytes> = Vec::new();
    let mut open: Option<(&std::sync::Arc<Slab>, std::ops::Range<usize>)> = None;
    for &i in chunk {
        let (slab, range) = items.get(i)?.framed.clone()?;
        match &mut open {
            Some((s, r)) if std::sync::Arc::ptr_eq(s, slab) && r.end == range.start => {
                r.end = range.end;
            }
            _ => {
                if let Some((s, r)) = open.replace((slab, range)) {
                    runs.push(Slab::bytes(s, r));
                }
            }
        }
    }
    if let Some((s, r)) = open {
        runs.push(Slab::bytes(s, r));
    }
    let bytes: usize = runs.iter().map(bytes::Bytes::len).sum();
    (runs.len() <= MAX_SHORT_RUNS || bytes / runs.len() >= MIN_RUN_BYTES).then_some(runs)
}

/// Runs of any length a request may have (a few vectored writes).
const MAX_SHORT_RUNS: usize = 64;
/// Beyond [`MAX_SHORT_RUNS`], the mean run length sent without a copy.
const MIN_RUN_BYTES: usize = 16 * 1024;

/// Split `pending` into requests of at most `max_bytes` (a document larger
/// than the bound goes alone).
pub fn chunks(items: &[Item<'_>], pending: &[usize], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    // Usually one request takes all: sized for it, not grown by doubling.
    let mut current = Vec::with_capacity(pending.len());
    let mut bytes = 0;
    for &i in pending {
        let Some(item) = items.get(i) else { continue };
        let size = item.source.len() + item.index.len() + 80;
        if !current.is_empty() && bytes + size > max_bytes {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `v` (not negative) in decimal, zero-padded to `width` digits.
pub(super) fn push_digits(out: &mut String, v: i64, width: u32) {
    let v = v.max(0);
    let digits = v.checked_ilog10().unwrap_or(0) + 1;
    for _ in digits..width {
        out.push('0');
    }
    let _ = std::fmt::Write::write_fmt(out, format_args!("{v}"));
}

/// The index for a document at `time_nanos`: `%Y`, `%m`, `%d`, `%H` of the
/// time in UTC (`syslog-%Y.%m.%d`), `%%` a percent sign.
pub fn index_name(pattern: &str, time_nanos: i64) -> String {
    if !pattern.contains('%') {
        return pattern.to_owned();
    }
    let secs = time_nanos.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let h = secs.rem_euclid(86_400) / 3600;
    let mut out = String::with_capacity(pattern.len() + 8);
    expand_pattern(pattern, &mut out, |out, field| match field {
        Some('Y') => push_digits(out, y, 4),
        Some('m') => push_digits(out, i64::from(m), 2),
        Some('d') => push_digits(out, i64::from(d), 2),
        Some('H') => push_digits(out, h, 2),
        Some(other) => {
            out.push('%');
            out.push(other);
        }
        None => out.push('%'),
    });
    out
}

/// Walk an index name `pattern` into `out`: its text as it is, `%%` as a
/// percent sign, and each other field `%X` (`None`: a `%` that ends the
/// pattern) as `field` writes it.
pub(super) fn expand_pattern(
    pattern: &str,
    out: &mut String,
    mut field: impl FnMut(&mut String, Option<char>),
) {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            other => field(out, other),
        }
    }
}

/// A stable 128-bit id of a document's text (XXH3-128), for records that
/// carry no key of their own.
pub fn document_id(source: &str) -> String {
    hex(&document_hash(source))
}

/// [`document_id`]'s 16 bytes.
pub fn document_hash(source: &str) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(source.as_bytes()).to_le_bytes()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}
