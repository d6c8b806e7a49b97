//! The decoded syslog message that flows from the decoder to the routes.
//!
//! An [`Event`] keeps the frame it came from and points into it: header
//! fields are byte spans of the frame's UTF-8 text, so decoding allocates
//! nothing for a message without structured data, and one list for a
//! message with it (an element's first four parameters lie in the element,
//! `SdParams`). Text that is not in the frame (an unescaped parameter
//! value, a value set by config) is owned.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

pub(crate) use crate::text::Timestamp;
use crate::text::{text_of, write_json_str, write_rfc3339};

/// Which grammar a frame was decoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rfc5424,
    Rfc3164,
    /// Nothing recognisable: the event is `valid = false` and its message is
    /// the raw frame.
    Unknown,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rfc5424 => "rfc5424",
            Protocol::Rfc3164 => "rfc3164",
            Protocol::Unknown => "unknown",
        }
    }
}

/// A byte range of the event's text. Always on `char` boundaries because the
/// decoder only cuts at ASCII delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        // Frames are bounded by max_frame_bytes (at most a few MiB), far
        // below u32::MAX; saturate rather than wrap if that ever changes.
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }
}

/// A piece of text: either a span of the event's text or owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Span(Span),
    Owned(Arc<str>),
    /// Text the decoder supplies itself (e.g. RFC 5424 SD-IDs it adds).
    Static(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdParam {
    pub name: Text,
    pub value: Text,
}

/// An element's parameters. Up to four are held in the element itself:
/// a frame's structured data then costs one allocation (the element list)
/// instead of one more per element (callgrind, rfc5424_sd bench: a malloc
/// and a free per element, about 170 instructions).
pub(crate) type SdParams = smallvec::SmallVec<[SdParam; 4]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: Text,
    pub params: SdParams,
}

/// A way a frame broke its grammar that the decoder read anyway (issue
/// #22). The names are stable: they are what the canonical JSON's
/// `lenient` list, the `rule` label of `sluice_decode_lenient_frames_total`
/// and the README call them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenientRule {
    /// RFC 3164: `cron(pam_unix)[2211]:`, parentheses in the TAG.
    TagWithParens,
    /// RFC 3164: a Cisco mnemonic where the TAG is (`%ASA-6-302013:`).
    TagCiscoMnemonic,
    /// RFC 3164: a TAG with punctuation the RFC does not allow (`#tag:`,
    /// Snare's `#001`, `foo@bar:`).
    TagPunctuation,
    /// RFC 3164: `: message`, a colon where the TAG would be.
    TagEmpty,
    /// RFC 3164: `TAG:` with neither timestamp nor hostname before it.
    TagWithoutHeader,
    /// A space between PRI and the timestamp.
    SpaceAfterPri,
    /// RFC 3164: a colon after the timestamp, then hostname and TAG
    /// (`Mar  7 19:06:53: host tag: …`; Cisco's `TIME: %MNEMONIC` is not
    /// this).
    ColonAfterTimestamp,
    /// RFC 3164: PRI, timestamp and hostname, and nothing after the hostname.
    HeaderWithoutMessage,
    /// RFC 3164: `-` (RFC 5424's NILVALUE) where the hostname is.
    HostnameNil,
    /// RFC 5424: the header ends before APP-NAME, PROCID and MSGID; what
    /// follows the hostname is the message (Flume's reading).
    HeaderFieldsMissing,
    /// RFC 5424: a timestamp without `Z` or an offset, read in the
    /// listener's zone.
    TimestampWithoutOffset,
    /// RFC 5424: spaces around a parameter's `=` (`sequenceId= "5"`).
    SdSpaceAroundEquals,
    /// RFC 5424: a parameter without a value (`[origin ip]`, `[origin ip=]`):
    /// the element's well-formed parameters are kept, and its text stays in
    /// the message.
    SdParamWithoutValue,
    /// RFC 5424: STRUCTURED-DATA that is neither `-` nor elements; it stays
    /// in the message.
    SdMalformed,
    /// RFC 5424: the frame ends after MSGID (or MSGID and a space),
    /// without STRUCTURED-DATA.
    SdMissing,
    /// RFC 3164: control bytes (below 0x20) in the hostname; the
    /// word is still the hostname, its bytes kept.
    HostnameControlBytes,
    /// RFC 5424: a header field (HOSTNAME, APP-NAME, PROCID, MSGID) with
    /// bytes outside PRINTUSASCII (§6); the field is kept as sent.
    HeaderNotPrintusascii,
    /// RFC 5424: an SD-ID a second time in one frame (§6.3.2: MUST NOT);
    /// every element is kept.
    SdDuplicateId,
    /// RFC 5424: `]` unescaped in a PARAM-VALUE (§6.3.3: MUST be escaped);
    /// the value runs to its closing quote, `]` included.
    SdValueUnescapedBracket,
    /// RFC 5424: no space between STRUCTURED-DATA and MSG
    /// (`[a x="1"]garbage`); MSG is what follows the last element.
    SdNoSpaceBeforeMsg,
    /// RFC 3164: a timestamp with an impossible date or time (`Nov 31`,
    /// `25:01:02`, year `0001`): no timestamp, its text stays in the
    /// message with the rest of the frame.
    TimestampInvalid,
    /// RFC 3164: the word after the hostname taken for the TAG without a
    /// colon (`host tag msg`, `host tag[12] msg`), as rsyslog and syslog_loose
    /// read it; the word runs to SP.
    TagWithoutColon,
    /// RFC 3164: more than one space between hostname and `TAG:` /
    /// `TAG[PID]:`.
    TagAfterSpaces,
    /// RFC 3164: a TAG over 32 bytes (§4.1.3: MUST NOT exceed 32); read up
    /// to 255 bytes.
    TagLong,
    /// RFC 3164: a month not written `Mmm` (`AUG`, `nov`).
    MonthCase,
    /// RFC 3164 (Cisco): a zone name other than UTC/GMT after the time
    /// (`00:12:49.135 CET:`). The name alone is ambiguous (CST), so the
    /// time is read in the listener's zone and the name kept as SD
    /// `[zone name="CET"]`.
    TimestampZoneName,
    /// RFC 3164: RFC 5424 structured data after the TAG (rsyslog's own
    /// `rsyslogd: [origin software="rsyslogd" …] start`), read when every
    /// element is well-formed and has a parameter.
    SdInRfc3164,
    /// RFC 5424: more than one space between header fields (or after the
    /// version); read as one separator.
    HeaderExtraSpaces,
    /// RFC 5424 time with a lower-case `t` or `z` (§6.2.3: upper case).
    TimestampLowercase,
    /// An RFC 3339 offset without its colon (`+0200`).
    TimestampOffsetWithoutColon,
    /// More fraction digits than allowed: RFC 5424 over 6 (§6.2.3); any
    /// format over 9, where digits past the nanosecond are dropped.
    TimestampFractionLong,
    /// A leap second (`23:59:60`), read as `:59` of the same minute: the
    /// rule with the time says which second was sent.
    TimestampLeapSecond,
    /// RFC 3164: `TAG:` or `TAG[PID]:` with bytes no TAG class holds
    /// (non-ASCII `prógram[12]:`, `*`, a tab): the word up to the colon is
    /// still the TAG, its `[PID]` the procid.
    TagUnusualBytes,
    /// RFC 3164: `Feb 29` without a year, where the inferred year has
    /// none: read in the latest leap year before it.
    TimestampLeapDay,
    /// A frame without PRI that opens with a timestamp: the header read as
    /// after a PRI (rsyslog, syslog_loose), facility and severity left
    /// empty (syslog_loose, VRL): the sender gave none.
    PriMissing,
    /// RFC 3164: a tab between the hostname and `TAG:` (`host\ttag: x`);
    /// read as the separator (a tab right after the time is no header).
    HeaderTab,
    /// A comma before the fraction of the second (`09:01:02,123`, log4j's
    /// and Python's ISO 8601 layouts); read as `.123`.
    TimestampCommaFraction,
    /// RFC 5424: an SD-ID or PARAM-NAME with bytes outside PRINTUSASCII or
    /// longer than 32 bytes (§6.3.2, §6.3.3); read as sent.
    SdNameInvalid,
    /// RFC 5424: more than one space before a parameter, or a space before
    /// `]`, inside an SD element; read as one separator.
    SdExtraSpaces,
    /// Whitespace (SP, HT, CR, LF) before the PRI (`\n    <13>1 …`,
    /// syslog_loose `handles_weird_whitespace`): skipped.
    SpaceBeforePri,
    /// RFC 5424: a header field over its length (§6: HOSTNAME 255,
    /// APP-NAME 48, PROCID 128, MSGID 32 bytes); read as sent.
    HeaderFieldLong,
    /// RFC 3164: a BSD time written year first (`2020 Jul 16 02:15:13`,
    /// go-syslog); read with that year.
    TimestampYearFirst,
    /// RFC 3164: an IP literal in brackets where the hostname is
    /// (`[2001:db8::2]`, rsyslog `permit.squareBracketsInHostname`); read
    /// as the hostname, brackets kept.
    HostnameBracketed,
}

impl LenientRule {
    /// Every rule, in the order the JSON lists them.
    pub const ALL: [LenientRule; 43] = [
        LenientRule::TagWithParens,
        LenientRule::TagCiscoMnemonic,
        LenientRule::TagPunctuation,
        LenientRule::TagEmpty,
        LenientRule::TagWithoutHeader,
        LenientRule::SpaceAfterPri,
        LenientRule::ColonAfterTimestamp,
        LenientRule::HeaderWithoutMessage,
        LenientRule::HostnameNil,
        LenientRule::HeaderFieldsMissing,
        LenientRule::TimestampWithoutOffset,
        LenientRule::SdSpaceAroundEquals,
        LenientRule::SdParamWithoutValue,
        LenientRule::SdMalformed,
        LenientRule::SdMissing,
        LenientRule::HostnameControlBytes,
        LenientRule::HeaderNotPrintusascii,
        LenientRule::SdDuplicateId,
        LenientRule::SdValueUnescapedBracket,
        LenientRule::SdNoSpaceBeforeMsg,
        LenientRule::TimestampInvalid,
        LenientRule::TagWithoutColon,
        LenientRule::TagAfterSpaces,
        LenientRule::TagLong,
        LenientRule::MonthCase,
        LenientRule::TimestampZoneName,
        LenientRule::SdInRfc3164,
        LenientRule::HeaderExtraSpaces,
        LenientRule::TimestampLowercase,
        LenientRule::TimestampOffsetWithoutColon,
        LenientRule::TimestampFractionLong,
        LenientRule::TimestampLeapSecond,
        LenientRule::TagUnusualBytes,
        LenientRule::TimestampLeapDay,
        LenientRule::PriMissing,
        LenientRule::HeaderTab,
        LenientRule::TimestampCommaFraction,
        LenientRule::SdNameInvalid,
        LenientRule::SdExtraSpaces,
        LenientRule::SpaceBeforePri,
        LenientRule::HeaderFieldLong,
        LenientRule::TimestampYearFirst,
        LenientRule::HostnameBracketed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LenientRule::TagWithParens => "tag_with_parens",
            LenientRule::TagCiscoMnemonic => "tag_cisco_mnemonic",
            LenientRule::TagPunctuation => "tag_punctuation",
            LenientRule::TagEmpty => "tag_empty",
            LenientRule::TagWithoutHeader => "tag_without_header",
            LenientRule::SpaceAfterPri => "space_after_pri",
            LenientRule::ColonAfterTimestamp => "colon_after_timestamp",
            LenientRule::HeaderWithoutMessage => "header_without_message",
            LenientRule::HostnameNil => "hostname_nil",
            LenientRule::HeaderFieldsMissing => "header_fields_missing",
            LenientRule::TimestampWithoutOffset => "timestamp_without_offset",
            LenientRule::SdSpaceAroundEquals => "sd_space_around_equals",
            LenientRule::SdParamWithoutValue => "sd_param_without_value",
            LenientRule::SdMalformed => "sd_malformed",
            LenientRule::SdMissing => "sd_missing",
            LenientRule::HostnameControlBytes => "hostname_control_bytes",
            LenientRule::HeaderNotPrintusascii => "header_not_printusascii",
            LenientRule::SdDuplicateId => "sd_duplicate_id",
            LenientRule::SdValueUnescapedBracket => "sd_value_unescaped_bracket",
            LenientRule::SdNoSpaceBeforeMsg => "sd_no_space_before_msg",
            LenientRule::TimestampInvalid => "timestamp_invalid",
            LenientRule::TagWithoutColon => "tag_without_colon",
            LenientRule::TagAfterSpaces => "tag_after_spaces",
            LenientRule::TagLong => "tag_long",
            LenientRule::MonthCase => "month_case",
            LenientRule::TimestampZoneName => "timestamp_zone_name",
            LenientRule::SdInRfc3164 => "sd_in_rfc3164",
            LenientRule::HeaderExtraSpaces => "header_extra_spaces",
            LenientRule::TimestampLowercase => "timestamp_lowercase",
            LenientRule::TimestampOffsetWithoutColon => "timestamp_offset_without_colon",
            LenientRule::TimestampFractionLong => "timestamp_fraction_long",
            LenientRule::TimestampLeapSecond => "timestamp_leap_second",
            LenientRule::TagUnusualBytes => "tag_unusual_bytes",
            LenientRule::TimestampLeapDay => "timestamp_leap_day",
            LenientRule::PriMissing => "pri_missing",
            LenientRule::HeaderTab => "header_tab",
            LenientRule::TimestampCommaFraction => "timestamp_comma_fraction",
            LenientRule::SdNameInvalid => "sd_name_invalid",
            LenientRule::SdExtraSpaces => "sd_extra_spaces",
            LenientRule::SpaceBeforePri => "space_before_pri",
            LenientRule::HeaderFieldLong => "header_field_long",
            LenientRule::TimestampYearFirst => "timestamp_year_first",
            LenientRule::HostnameBracketed => "hostname_bracketed",
        }
    }

    fn bit(self) -> u64 {
        1 << (self as u64)
    }
}

/// One value per lenient rule, indexed like [`LenientRule::ALL`] (an
/// array of over 32 has no derived `Default`).
#[derive(Debug, Clone)]
pub(crate) struct PerRule<T>(pub(crate) [T; LenientRule::ALL.len()]);

impl<T: Default> Default for PerRule<T> {
    fn default() -> Self {
        PerRule(std::array::from_fn(|_| T::default()))
    }
}

impl<T> std::ops::Deref for PerRule<T> {
    type Target = [T; LenientRule::ALL.len()];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T> std::ops::DerefMut for PerRule<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The lenient rules that fired for one frame (a bit set: no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lenient(u64);

impl Lenient {
    pub fn insert(&mut self, rule: LenientRule) {
        self.0 |= rule.bit();
    }

    pub fn remove(&mut self, rule: LenientRule) {
        self.0 &= !rule.bit();
    }

    /// Add every rule of `other`.
    pub fn extend(&mut self, other: Lenient) {
        self.0 |= other.0;
    }

    pub fn contains(self, rule: LenientRule) -> bool {
        self.0 & rule.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules that fired, in [`LenientRule::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = LenientRule> {
        LenientRule::ALL
            .into_iter()
            .filter(move |r| self.contains(*r))
    }
}

/// A decoded message.
#[derive(Debug, Clone)]
pub struct Event {
    /// The frame as UTF-8 (invalid sequences replaced when `lossy_utf8`).
    text: ByteString,
    /// The frame as received, kept only when it was not valid UTF-8
    /// (otherwise it is `text`).
    lossy_raw: Option<Box<Bytes>>,
    pub protocol: Protocol,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub timestamp: Option<Timestamp>,
    pub hostname: Option<Text>,
    pub appname: Option<Text>,
    pub procid: Option<Text>,
    pub msgid: Option<Text>,
    pub structured_data: Vec<SdElement>,
    pub message: Text,
    /// Where `message` lay in the frame when it was replaced by text the
    /// frame does not hold (joined continuation lines, restored newlines):
    /// the Flume document's body starts before it.
    pub frame_message: Option<Span>,
    /// False when the frame could not be decoded; `message` is then the raw text.
    pub valid: bool,
    /// True when the frame was not valid UTF-8 and was converted lossily.
    pub lossy_utf8: bool,
    /// The lenient rules the decoder needed for this frame (empty for a
    /// frame that fits its grammar).
    pub lenient: Lenient,
    pub peer: Option<SocketAddr>,
    /// Receive time, nanoseconds since the Unix epoch.
    pub received_nanos: i64,
    /// This frame's number among the frames the process received, set by
    /// the reader (0 until then): two frames alike in every byte, peer and
    /// receive time (one read of a sender that logged a line twice) are
    /// still two frames, and their documents two `_id`s.
    pub frame_number: u64,
    /// The document-identity nonce of the process that received the frame,
    /// when that was another one (a Kafka envelope's `sluice.id`); `None`:
    /// this process's own.
    pub id_nonce: Option<u64>,
    /// The input's acknowledgement (Kafka listener), cloned into every
    /// record made of this event; `None` elsewhere.
    pub ack: Option<crate::record::Ack>,
}

impl Event {
    /// An event with only its text set: `protocol = unknown`, `valid = false`,
    /// message = the whole text. The decoder fills in the rest.
    pub fn undecoded(raw: Bytes, peer: Option<SocketAddr>, received_nanos: i64) -> Self {
        let (text, lossy_raw) = text_of(raw);
        let mut event = Event::without_text(text.len(), lossy_raw, peer, received_nanos);
        event.text = text;
        event
    }

    /// An undecoded event whose text (of `len` bytes) is installed later
    /// with [`Event::set_text`], so a parser can borrow the text while it
    /// fills in the event.
    pub(crate) fn without_text(
        len: usize,
        lossy_raw: Option<Bytes>,
        peer: Option<SocketAddr>,
        received_nanos: i64,
    ) -> Self {
        Event {
            text: ByteString::new(),
            lossy_utf8: lossy_raw.is_some(),
            lossy_raw: lossy_raw.map(Box::new),
            protocol: Protocol::Unknown,
            facility: None,
            severity: None,
            timestamp: None,
            hostname: None,
            appname: None,
            procid: None,
            msgid: None,
            structured_data: Vec::new(),
            message: Text::Span(Span::new(0, len)),
            frame_message: None,
            valid: false,
            lenient: Lenient::default(),
            peer,
            received_nanos,
            frame_number: 0,
            id_nonce: None,
            ack: None,
        }
    }

    /// What [`Event::without_text`] sets from the frame: a message of
    /// `len` bytes, and the original bytes when they were not UTF-8.
    pub(crate) fn begin_text(&mut self, len: usize, lossy_raw: Option<Bytes>) {
        self.lossy_utf8 = lossy_raw.is_some();
        self.lossy_raw = lossy_raw.map(Box::new);
        self.message = Text::Span(Span::new(0, len));
    }

    pub(crate) fn set_text(&mut self, text: ByteString) {
        self.text = text;
    }

    /// The frame as received.
    pub fn raw(&self) -> &[u8] {
        match &self.lossy_raw {
            Some(raw) => raw,
            None => self.text.as_bytes(),
        }
    }

    /// The frame as received, shared (no copy).
    pub fn raw_bytes(&self) -> Bytes {
        match &self.lossy_raw {
            Some(raw) => Bytes::clone(raw),
            None => self.text.as_bytes().clone(),
        }
    }

    /// PRIVAL (facility × 8 + severity), when the frame had one.
    pub fn pri(&self) -> Option<u8> {
        Some((self.facility? << 3) | self.severity?)
    }

    /// The first value of parameter `param` in structured-data element `id`.
    pub fn sd_param(&self, id: &str, param: &str) -> Option<&str> {
        self.structured_data
            .iter()
            .filter(|e| self.resolve(&e.id) == id)
            .flat_map(|e| &e.params)
            .find(|p| self.resolve(&p.name) == param)
            .map(|p| self.resolve(&p.value))
    }

    /// The frame's UTF-8 text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Resolve a [`Text`] of this event to a string slice.
    pub fn resolve<'a>(&'a self, t: &'a Text) -> &'a str {
        match t {
            Text::Span(s) => self
                .text
                .get(s.start as usize..s.end as usize)
                .unwrap_or(""),
            Text::Owned(s) => s,
            Text::Static(s) => s,
        }
    }

    fn opt<'a>(&'a self, t: &'a Option<Text>) -> Option<&'a str> {
        t.as_ref().map(|t| self.resolve(t))
    }

    pub fn hostname(&self) -> Option<&str> {
        self.opt(&self.hostname)
    }
    pub fn appname(&self) -> Option<&str> {
        self.opt(&self.appname)
    }
    pub fn procid(&self) -> Option<&str> {
        self.opt(&self.procid)
    }
    pub fn msgid(&self) -> Option<&str> {
        self.opt(&self.msgid)
    }
    pub fn message(&self) -> &str {
        self.resolve(&self.message)
    }

    /// The message after the BOM an RFC 5424 MSG may start with (§6.4: it
    /// marks the text as UTF-8, and the message keeps it): the text route
    /// patterns match (so `^` anchors at it), `key=number` pairs are read
    /// from and multi-line joining classifies and appends.
    pub fn message_after_bom(&self) -> &str {
        let message = self.message();
        message.strip_prefix('\u{feff}').unwrap_or(message)
    }

    /// Append the canonical JSON object of design.md (no trailing newline).
    pub fn write_canonical_json(&self, out: &mut String) {
        out.push('{');
        self.write_canonical_fields(out);
        out.push('}');
    }

    /// The canonical fields, comma separated, without braces: documents
    /// extend them with fields of their own.
    pub fn write_canonical_fields(&self, out: &mut String) {
        out.push_str("\"protocol\":\"");
        out.push_str(self.protocol.as_str());
        out.push_str("\",\"facility\":");
        write_opt_u8(out, self.facility);
        out.push_str(",\"severity\":");
        write_opt_u8(out, self.severity);
        out.push_str(",\"timestamp\":");
        match &self.timestamp {
            Some(ts) => {
                out.push('"');
                write_rfc3339(out, ts);
                out.push('"');
            }
            None => out.push_str("null"),
        }
        for (key, value) in [
            ("hostname", self.hostname()),
            ("appname", self.appname()),
            ("procid", self.procid()),
            ("msgid", self.msgid()),
        ] {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            write_opt_json_str(out, value);
        }
        out.push_str(",\"structured_data\":");
        self.write_structured_data_json(out);
        out.push_str(",\"message\":");
        write_json_str(out, self.message());
        out.push_str(",\"valid\":");
        out.push_str(if self.valid { "true" } else { "false" });
        // Only when a rule fired: a frame that fits its grammar prints as
        // it always did.
        if !self.lenient.is_empty() {
            out.push_str(",\"lenient\":[");
            for (i, rule) in self.lenient.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(rule.as_str());
                out.push('"');
            }
            out.push(']');
        }
    }

    /// Structured data as `{"id":{"param":"value"}}`, `null` when absent.
    /// A parameter name the sender repeated within an element becomes an
    /// array of its values, in order; a repeated element id is merged.
    pub fn write_structured_data_json(&self, out: &mut String) {
        if self.structured_data.is_empty() {
            out.push_str("null");
            return;
        }
        let params: usize = self.structured_data.iter().map(|e| e.params.len()).sum();
        if self.structured_data.len() > SD_LINEAR_ELEMENTS || params > SD_LINEAR_PARAMS {
            self.write_many_structured_data_json(out);
        } else {
            self.write_few_structured_data_json(out);
        }
    }

    /// Structured data of a handful of elements: by scans, quadratic in
    /// the number of elements and parameters, cheapest for a real frame.
    fn write_few_structured_data_json(&self, out: &mut String) {
        out.push('{');
        let mut seen_ids: Vec<&str> = Vec::new();
        for element in &self.structured_data {
            let id = self.resolve(&element.id);
            if !json_key_once(out, &mut seen_ids, id) {
                continue;
            }
            out.push('{');
            let params: Vec<&SdParam> = self
                .structured_data
                .iter()
                .filter(|e| self.resolve(&e.id) == id)
                .flat_map(|e| e.params.iter())
                .collect();
            let mut seen_names: Vec<&str> = Vec::new();
            for p in &params {
                let name = self.resolve(&p.name);
                if !json_key_once(out, &mut seen_names, name) {
                    continue;
                }
                let values: Vec<&str> = params
                    .iter()
                    .filter(|q| self.resolve(&q.name) == name)
                    .map(|q| self.resolve(&q.value))
                    .collect();
                write_json_values(out, &values);
            }
            out.push('}');
        }
        out.push('}');
    }

    /// [`Self::write_structured_data_json`] for a frame of many elements:
    /// the same object (IDs and names in order of first appearance, the
    /// values of a repeated name as an array), grouped through hash maps
    /// so that thousands of elements or parameters cost time linear in
    /// their number. The scans above are quadratic, and cheaper for the
    /// handful a real frame carries.
    #[cold]
    fn write_many_structured_data_json(&self, out: &mut String) {
        let ids = group_in_order(
            self.structured_data
                .iter()
                .map(|e| (self.resolve(&e.id), e)),
        );
        out.push('{');
        for (i, (id, elements)) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(out, id);
            out.push_str(":{");
            let names = group_in_order(elements.iter().flat_map(|e| {
                e.params
                    .iter()
                    .map(|p| (self.resolve(&p.name), self.resolve(&p.value)))
            }));
            for (j, (name, values)) in names.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_json_str(out, name);
                out.push(':');
                write_json_values(out, values);
            }
            out.push('}');
        }
        out.push('}');
    }
}

/// Past this many SD elements, or parameters in all, structured data is
/// written through [`Event::write_many_structured_data_json`].
const SD_LINEAR_ELEMENTS: usize = 16;
const SD_LINEAR_PARAMS: usize = 32;

/// One value as a JSON string, several as an array of them.
fn write_json_values(out: &mut String, values: &[&str]) {
    if let [only] = values {
        write_json_str(out, only);
    } else {
        out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(out, v);
        }
        out.push(']');
    }
}

/// `items` grouped by key, the groups in order of their key's first
/// appearance, each group's items in their order.
fn group_in_order<'a, T>(items: impl Iterator<Item = (&'a str, T)>) -> Vec<(&'a str, Vec<T>)> {
    let mut index: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&'a str, Vec<T>)> = Vec::new();
    for (key, item) in items {
        let at = *index.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, group)) = groups.get_mut(at) {
            group.push(item);
        }
    }
    groups
}

/// Writes `"key":` (after a comma unless it is the first key) the first
/// time `key` comes; false, writing nothing, when it came before.
fn json_key_once<'a>(out: &mut String, seen: &mut Vec<&'a str>, key: &'a str) -> bool {
    if seen.contains(&key) {
        return false;
    }
    if !seen.is_empty() {
        out.push(',');
    }
    seen.push(key);
    write_json_str(out, key);
    out.push(':');
    true
}

fn write_opt_u8(out: &mut String, v: Option<u8>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
    }
}

fn write_opt_json_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => write_json_str(out, v),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
