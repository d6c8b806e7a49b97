//! Every `_bulk` body the Elasticsearch sink builds is valid NDJSON, ends
//! with a newline, pairs every action with exactly one source line, and
//! stays within the byte bound (a single document larger than the bound
//! goes alone).

use proptest::prelude::*;
use sluice::testing::{Item, bulk_body, chunks, document_hash, document_id};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn bulk_bodies_are_ndjson_paired_and_bounded(
        docs in proptest::collection::vec(("\\PC{0,200}", any::<bool>(), any::<bool>()), 1..60),
        // Any text: the action line must escape it.
        index in "\\PC{1,20}",
        max_bytes in 200usize..4000,
    ) {
        // Documents as the encoders write them: one line of JSON.
        let sources: Vec<String> = docs
            .iter()
            .map(|(text, _, _)| serde_json::json!({"message": text, "n": text.len()}).to_string())
            .collect();
        // Two indexes (two hours of a batch), each shared by its items as
        // the sink shares them.
        let indexes: [String; 2] = [index.clone(), format!("{index}-2")];
        let items: Vec<Item<'_>> = sources
            .iter()
            .zip(&docs)
            .map(|(s, (_, with_id, second))| Item {
                index: indexes[usize::from(*second)].as_str(),
                id: with_id.then(|| document_hash(s)),
                source: s,
                framed: None,
            })
            .collect();
        let pending: Vec<usize> = (0..items.len()).collect();
        let mut seen = Vec::new();
        for chunk in chunks(&items, &pending, max_bytes) {
            let body = bulk_body(&items, &chunk);
            let text = String::from_utf8(body.clone()).unwrap();
            prop_assert!(text.ends_with('\n'));
            prop_assert!(body.len() <= max_bytes || chunk.len() == 1, "{} > {max_bytes} with {} docs", body.len(), chunk.len());
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            prop_assert_eq!(lines.len(), chunk.len() * 2);
            for (k, pair) in lines.chunks(2).enumerate() {
                let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                let meta = &action["create"];
                let item = &items[chunk[k]];
                prop_assert_eq!(meta["_index"].as_str(), Some(item.index));
                let id = item.id.map(|_| document_id(item.source));
                prop_assert_eq!(meta["_id"].as_str(), id.as_deref());
                let source: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
                prop_assert_eq!(source, serde_json::from_str::<serde_json::Value>(item.source).unwrap());
            }
            seen.extend(chunk);
        }
        // Every document in exactly one request, in order.
        prop_assert_eq!(seen, pending);
    }
}
