//! Reading what the `_bulk` stand-in stored.

use crate::es_server::EsServer;

/// Numbers N of the documents the `_bulk` stand-in stored ("message N",
/// perhaps followed by padding), sorted.
pub(crate) fn stored_numbers(es: &EsServer) -> Vec<usize> {
    let state = es.state.lock().unwrap();
    let mut n: Vec<usize> = state
        .docs
        .values()
        .filter_map(|d| {
            let m = d["message"].as_str()?.strip_prefix("message ")?;
            m.split(' ').next()?.parse().ok()
        })
        .collect();
    n.sort();
    n
}

/// Messages stored by the `_bulk` stand-in, in the order they were stored.
pub(crate) fn stored_in_order(es: &EsServer) -> Vec<String> {
    let state = es.state.lock().unwrap();
    state
        .arrival
        .iter()
        .filter_map(|k| state.docs.get(k)?["message"].as_str().map(str::to_owned))
        .collect()
}
