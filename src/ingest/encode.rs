//! A reader's record of an event for one route: its text encoded
//! straight into the route's slab where the output allows, and the
//! conversion errors counted.

use super::staged::StagedRoute;
use super::{Pipeline, RouteRuntime};
use crate::config::OutputConfig;
use crate::event::Event;
use crate::output::{ConversionError, encode_document_into, encode_text, push_point, record_time};
use crate::record::Record;

impl Pipeline {
    /// Stage `event`'s record for `route` (last in `staged.records`), its
    /// text in the route's slab: built in place, not returned and moved
    /// again (`false`: nothing emitted, conversion errors counted).
    pub(super) fn encode(
        route: &RouteRuntime,
        staged: &mut StagedRoute,
        event: &Event,
        captures: Option<&crate::output::Captures<'_>>,
        errors: &mut Vec<ConversionError>,
    ) -> bool {
        let (payload, time_nanos, key) = if let OutputConfig::Document(format) = &route.output {
            // Written straight into the slab.
            let time_nanos = record_time(event);
            let key = Some(route.text.key(event));
            let payload = staged.stage(
                (route.bulk.as_ref(), &route.slabs),
                time_nanos,
                key,
                |slab| {
                    encode_document_into(
                        slab,
                        format,
                        &route.text,
                        &route.capture_names,
                        event,
                        captures,
                    )
                },
            );
            (payload, time_nanos, key)
        } else if let (OutputConfig::Metric(m), None) = (&route.output, &route.bulk) {
            // Written straight into the slab too: no text of its own to
            // copy there.
            let time_nanos = record_time(event);
            let mut emitted = false;
            let payload = staged.stage((None, &route.slabs), time_nanos, None, |mut slab| {
                emitted = push_point(&mut slab, m, event, captures, time_nanos, errors);
                slab
            });
            if !errors.is_empty() {
                Self::count_errors(route, errors);
            }
            if !emitted {
                // A slab taken for this point alone is not held by an
                // idle reader (as if it had never been taken).
                if staged.slab.is_empty() {
                    staged.slab = String::new();
                }
                return false;
            }
            (payload, time_nanos, None)
        } else {
            let encoded = encode_text(
                std::mem::take(&mut staged.scratch),
                &route.output,
                &route.name,
                &route.capture_names,
                event,
                captures,
                errors,
            );
            // Checked first: even an empty drain costs its setup and drop
            // on every record (callgrind).
            if !errors.is_empty() {
                Self::count_errors(route, errors);
            }
            let Some(mut encoded) = encoded else {
                return false;
            };
            let payload = staged.stage(
                (route.bulk.as_ref(), &route.slabs),
                encoded.time_nanos,
                encoded.key,
                |mut slab| {
                    slab.push_str(&encoded.text);
                    slab
                },
            );
            encoded.text.clear();
            staged.scratch = encoded.text;
            (payload, encoded.time_nanos, encoded.key)
        };
        staged.records.push(Record {
            payload,
            time_nanos,
            key,
            kafka: None,
            ack: event.ack.clone(),
        });
        true
    }

    /// Count the conversion errors of one record of `route` (and log them
    /// at debug); `errors` is left empty.
    #[cold]
    fn count_errors(route: &RouteRuntime, errors: &mut Vec<ConversionError>) {
        for e in errors.drain(..) {
            let counter = match e {
                ConversionError::BadValue { .. } => &route.metrics.conversion_bad_value,
                ConversionError::NoFields => &route.metrics.conversion_no_fields,
                ConversionError::NoMeasurement { .. } => &route.metrics.conversion_no_measurement,
                ConversionError::DroppedPoint => &route.metrics.conversion_dropped_point,
            };
            counter.inc();
            tracing::debug!(route = %route.name, error = %e, "conversion error");
        }
    }
}
