//! The raw envelope's headers (README "Kafka listener"): what an edge
//! sluice's Kafka sink writes beside a frame's bytes, read back into the
//! [`Received`](crate::ingest::Received) the frame is decoded with.

use std::net::SocketAddr;

use rdkafka::message::Headers;

use crate::telemetry::KafkaDrop;

/// The one envelope version this build reads.
pub(super) const VERSION: &[u8] = b"1";

/// The receive context an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) received_nanos: i64,
    pub(super) peer: Option<SocketAddr>,
    pub(super) nonce: u64,
    pub(super) frame_number: u64,
    pub(super) timezone: Option<chrono_tz::Tz>,
}

/// `Ok(None)`: no `sluice.envelope` header, a plain frame. `Err`: an
/// envelope this build cannot read, with the drop reason.
pub(super) fn parse(headers: Option<&impl Headers>) -> Result<Option<Envelope>, KafkaDrop> {
    let Some(headers) = headers else {
        return Ok(None);
    };
    let (mut version, mut received, mut peer, mut id, mut timezone) =
        (None, None, None, None, None);
    for h in headers.iter() {
        let slot = match h.key {
            "sluice.envelope" => &mut version,
            "sluice.received" => &mut received,
            "sluice.peer" => &mut peer,
            "sluice.id" => &mut id,
            "sluice.timezone" => &mut timezone,
            // sluice.listener and sluice.framing say where the frame came
            // in; decoding needs neither (the value is the frame as the
            // edge's decoder saw it).
            _ => continue,
        };
        *slot = Some(h.value.unwrap_or_default());
    }
    let Some(version) = version else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(KafkaDrop::EnvelopeVersion);
    }
    fn text(v: Option<&[u8]>) -> Result<Option<&str>, KafkaDrop> {
        v.map(|v| std::str::from_utf8(v).map_err(|_| KafkaDrop::Envelope))
            .transpose()
    }
    let received_nanos = text(received)?
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(KafkaDrop::Envelope)?;
    let peer = match text(peer)? {
        Some(p) => Some(p.parse::<SocketAddr>().map_err(|_| KafkaDrop::Envelope)?),
        None => None,
    };
    let id = text(id)?.ok_or(KafkaDrop::Envelope)?;
    let hex = |s: &str| {
        (s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    let (nonce, frame_number) = match (id.get(..16).and_then(hex), id.get(16..).and_then(hex)) {
        (Some(n), Some(f)) => (n, f),
        _ => return Err(KafkaDrop::Envelope),
    };
    let timezone = match text(timezone)? {
        Some(tz) => Some(
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| KafkaDrop::Envelope)?,
        ),
        None => None,
    };
    Ok(Some(Envelope {
        received_nanos,
        peer,
        nonce,
        frame_number,
        timezone,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders};

    fn headers(pairs: &[(&str, &str)]) -> OwnedHeaders {
        pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(*v),
            })
        })
    }

    const ID: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn an_envelope_gives_its_receive_context() {
        let h = headers(&[
            ("sluice.envelope", "1"),
            ("sluice.received", "1795000000123456789"),
            ("sluice.peer", "[2001:db8::1]:514"),
            ("sluice.listener", "tcp"),
            ("sluice.framing", "auto"),
            ("sluice.id", ID),
            ("sluice.timezone", "Europe/Berlin"),
        ]);
        assert_eq!(
            parse(Some(&h)),
            Ok(Some(Envelope {
                received_nanos: 1_795_000_000_123_456_789,
                peer: Some("[2001:db8::1]:514".parse().unwrap()),
                nonce: 0x0011_2233_4455_6677,
                frame_number: 0x8899_aabb_ccdd_eeff,
                timezone: Some(chrono_tz::Europe::Berlin),
            }))
        );
        // Peer and zone are optional.
        let h = headers(&[
            ("sluice.envelope", "1"),
            ("sluice.received", "5"),
            ("sluice.id", ID),
        ]);
        let e = parse(Some(&h)).unwrap().unwrap();
        assert_eq!((e.peer, e.timezone), (None, None));
    }

    #[test]
    fn no_envelope_header_is_a_plain_frame() {
        assert_eq!(parse(None::<&OwnedHeaders>), Ok(None));
        assert_eq!(parse(Some(&headers(&[("trace", "x")]))), Ok(None));
    }

    #[test]
    fn unreadable_envelopes_are_refused_with_a_reason() {
        let good = [
            ("sluice.envelope", "1"),
            ("sluice.received", "5"),
            ("sluice.id", ID),
        ];
        let with = |k: &str, v: &str| {
            let mut pairs: Vec<(&str, &str)> =
                good.iter().filter(|(g, _)| *g != k).copied().collect();
            pairs.push((k, v));
            parse(Some(&headers(&pairs)))
        };
        assert_eq!(
            with("sluice.envelope", "2"),
            Err(KafkaDrop::EnvelopeVersion)
        );
        for (k, v) in [
            ("sluice.received", "soon"),
            ("sluice.id", "0011"),
            ("sluice.id", "00112233445566778899AABBCCDDEEFF"),
            ("sluice.peer", "somewhere"),
            ("sluice.timezone", "Mars/Olympus"),
        ] {
            assert_eq!(with(k, v), Err(KafkaDrop::Envelope), "{k} = {v}");
        }
        let missing: Vec<(&str, &str)> = good[..2].to_vec();
        assert_eq!(parse(Some(&headers(&missing))), Err(KafkaDrop::Envelope));
    }
}
