//! Issue #22, the outside tester's open findings: SD-IDs by the thousand,
//! words that cannot be a TAG, TAGs with unusual bytes, timestamps that
//! are not times.

use crate::decode::rfc5424::structured_data_counted;
use crate::decode::tests::{dec, rules};
use crate::event::LenientRule;

/// `[i0 x="1"][i1 x="1"]…`: `n` elements, all with distinct SD-IDs of the
/// same first byte (so the 64-bit filter cannot tell them apart).
fn distinct_ids(n: usize) -> String {
    (0..n).map(|k| format!("[i{k} x=\"1\"]")).collect()
}

/// 5,000 distinct SD-IDs in one 64 KB frame took 1.1 s (debug): each new
/// ID was compared with every earlier one. The comparisons are now at most
/// 34 per element (32 byte-wise, then a hash set).
#[test]
fn distinct_sd_ids_cost_comparisons_linear_in_their_number() {
    for n in [10, 100, 5_000] {
        let sd = distinct_ids(n);
        let (read, comparisons) = structured_data_counted(sd.as_bytes(), sd.as_bytes());
        assert_eq!(read.elements.len(), n);
        assert!(read.rest.is_empty() && read.kept_from.is_none());
        assert!(
            !read.lenient.contains(LenientRule::SdDuplicateId),
            "{n} ids"
        );
        println!("{n} distinct SD-IDs: {comparisons} comparisons");
        assert!(
            comparisons <= 34 * n,
            "{n} distinct SD-IDs took {comparisons} comparisons (bound {})",
            34 * n
        );
    }
}

/// Past the byte-wise comparisons, a repeated SD-ID is still found, and
/// every element is kept.
#[test]
fn a_repeated_sd_id_is_found_after_thousands_of_others() {
    for n in [5, 40, 5_000] {
        for repeat in [0, n / 2, n - 1] {
            let sd = format!("{}[i{repeat} y=\"2\"]", distinct_ids(n));
            let (read, _) = structured_data_counted(sd.as_bytes(), sd.as_bytes());
            assert_eq!(read.elements.len(), n + 1, "{n} ids, i{repeat} again");
            assert!(
                read.lenient.contains(LenientRule::SdDuplicateId),
                "{n} ids, i{repeat} again"
            );
        }
    }
    let frame = format!(
        "<13>1 2025-03-01T08:00:00Z h a - - {}[i7 y=\"2\"] m",
        distinct_ids(3_000)
    );
    let e = dec(&frame);
    assert_eq!(rules(&e), vec!["sd_duplicate_id"]);
    assert_eq!(e.structured_data.len(), 3_001);
    assert_eq!(e.message(), "m");
}
