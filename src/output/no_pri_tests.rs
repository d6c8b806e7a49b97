//! A frame without PRI (`pri_missing`) has no facility or severity: the
//! documents and points made of it leave them out rather than make one up.

use super::tests::{document, point};
use crate::config::{DocumentFormat, FlumeKeepFields};

const NO_PRI: &str = "Nov 23 10:00:00 web01 app: heap_used=1234";

#[test]
fn ecs_writes_no_facility_or_severity_for_a_frame_without_pri() {
    let v = document(DocumentFormat::Ecs { original: false }, NO_PRI, None);
    let syslog = &v["log"]["syslog"];
    assert!(syslog.get("facility").is_none(), "{v}");
    assert!(syslog.get("severity").is_none(), "{v}");
    assert_eq!(
        (&syslog["hostname"], &syslog["appname"]),
        (&"web01".into(), &"app".into())
    );
    assert_eq!(v["sluice"]["valid"], true);
    // The same header with a PRI has both.
    let v = document(
        DocumentFormat::Ecs { original: false },
        &format!("<13>{NO_PRI}"),
        None,
    );
    assert_eq!(v["log"]["syslog"]["facility"]["code"], 1);
}

#[test]
fn line_protocol_leaves_out_facility_and_severity_tags_for_a_frame_without_pri() {
    let metric = "measurement = \"m\"\ntags = [\"facility\", \"severity\"]\nfields = { one = { value = 1, type = \"int\" } }";
    let (line, errors) = point("", metric, NO_PRI);
    assert!(errors.is_empty(), "{errors:?}");
    let line = line.unwrap();
    assert!(line.starts_with("m,app=app,host=web01 one=1i "), "{line}");
    let (line, _) = point("", metric, &format!("<13>{NO_PRI}"));
    assert!(line.unwrap().contains("facility=user,"));
}

/// Flume's `SyslogUtils` reads a frame without `<` as its bad event, and
/// the `flume` document is what Flume wrote: Facility and Severity `0`.
#[test]
fn the_flume_document_of_a_frame_without_pri_is_flumes_bad_event() {
    let flume = DocumentFormat::Flume {
        keep: FlumeKeepFields::default(),
    };
    let v = document(flume, NO_PRI, None);
    assert_eq!(v["@message"], NO_PRI);
    assert_eq!(
        (
            &v["@fields"]["Facility"],
            &v["@fields"]["Severity"],
            &v["@fields"]["flume.syslog.status"]
        ),
        (&"0".into(), &"0".into(), &"Invalid".into())
    );
}
