//! The tail of an ECS document (`source`, `event.created`, `sluice`) is
//! kept per thread for the last read's frames: every document still
//! carries its own peer, receive time, grammar, validity and route.

use bytes::Bytes;

use super::encode;
use crate::config::{DocumentFormat, OutputConfig};
use crate::decode::{DecodeOptions, decode};
use crate::text::{Timestamp, write_rfc3339};

#[test]
fn ecs_tails_follow_each_documents_own_fields() {
    let output = OutputConfig::Document(DocumentFormat::Ecs { original: false });
    let frames: [&[u8]; 3] = [
        b"<14>1 - h a - - - x=1",
        b"<14>Nov 23 10:00:00 web01 app: x=1",
        b"garbage",
    ];
    let peers = [
        Some("10.0.0.5:50122"),
        Some("10.0.0.5:50123"),
        None,
        Some("[2001:db8::7]:514"),
    ];
    let received = [1_795_520_100_000_000_000_i64, 1_795_520_100_000_001_000];
    let routes = ["docs", "other\"route"];
    let mut checked = 0;
    // Each field changed alone, and back, in turn.
    for round in 0..24 {
        let frame = frames[round % 3];
        let peer = peers[round / 2 % 4].map(|p| p.parse::<std::net::SocketAddr>().unwrap());
        let at = received[round / 3 % 2];
        let route = routes[round / 5 % 2];
        for _ in 0..2 {
            let e = decode(
                Bytes::from_static(frame),
                peer,
                at,
                &DecodeOptions::default(),
            );
            let r = encode(
                String::new(),
                &output,
                route,
                &[],
                &e,
                None,
                &mut Vec::new(),
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
            let mut created = String::new();
            write_rfc3339(
                &mut created,
                &Timestamp {
                    unix_nanos: at,
                    offset_secs: 0,
                    frac_digits: 6,
                },
            );
            assert_eq!(v["event"]["created"], created, "{round}");
            match peer {
                Some(p) => {
                    assert_eq!(v["source"]["address"], p.ip().to_string(), "{round}");
                    assert_eq!(v["source"]["port"], p.port(), "{round}");
                }
                None => assert!(v.get("source").is_none(), "{round}"),
            }
            assert_eq!(v["sluice"]["route"], route, "{round}");
            assert_eq!(v["sluice"]["protocol"], e.protocol.as_str(), "{round}");
            assert_eq!(v["sluice"]["valid"], e.valid, "{round}");
            assert_eq!(v["sluice"]["captures"], serde_json::json!({}), "{round}");
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
}
