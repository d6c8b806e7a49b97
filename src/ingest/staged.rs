//! What a reader stages between two pushes: per route, its records, their
//! texts in one slab (see [`crate::record::Payload`]).

use std::sync::{Arc, Mutex};

use crate::output::ConversionError;
use crate::record::{Payload, Record, Slab, SlabPool, slab_size};
use crate::sinks::elasticsearch::bulk::ActionLines;

#[derive(Default)]
pub(super) struct StagedRoute {
    pub(super) records: Vec<Record>,
    pub(super) matched: u64,
    /// The staged records' texts (and framing), one after another: each
    /// record's payload is a slice of it once [`StagedRoute::seal`]ed (see
    /// [`crate::record::Payload`]). Taken at the push, so an idle reader
    /// holds none.
    pub(super) slab: String,
    /// The largest slab the last read sealed (its length): the next
    /// read's first allocation.
    pub(super) hint: usize,
    /// The encoder's buffer, reused for every record.
    pub(super) scratch: String,
    /// Action lines for a route to an Elasticsearch sink.
    pub(super) actions: Option<ActionLines>,
    /// `records[..sealed]` are attached to slabs already (a read that
    /// stages more than [`MAX_SLAB`] bytes fills several).
    pub(super) sealed: usize,
}

/// The bytes after which a slab is sealed and the next record starts
/// another.
pub(super) const MAX_SLAB: usize = crate::record::SLAB_BYTES;
/// The least a slab is first asked for (the smallest slab size).
pub(super) const MIN_SLAB: usize = 256;

impl StagedRoute {
    /// Put a record's text in the slab (`write` appends it to the slab
    /// it is given and gives it back), after its action line when the
    /// route writes to an Elasticsearch sink and followed by LF then; its
    /// payload, to [`StagedRoute::seal`].
    pub(super) fn stage(
        &mut self,
        route: (Option<&(crate::config::BulkRoute, u64)>, &Arc<SlabPool>),
        time_nanos: i64,
        key: Option<[u8; 16]>,
        write: impl FnOnce(String) -> String,
    ) -> Payload {
        let (bulk, slabs) = route;
        if self.slab.len() >= MAX_SLAB {
            self.seal_slab(slabs);
        }
        if self.slab.capacity() == 0 {
            self.slab = slabs.take(slab_size(self.hint.max(MIN_SLAB)));
        }
        let start = self.slab.len();
        let mut framing = 0;
        if let Some((bulk, want)) = bulk {
            let actions = match &mut self.actions {
                Some(a) if a.framing() == *want => a,
                slot => slot.insert(ActionLines::new(bulk)),
            };
            if actions.write(&mut self.slab, time_nanos, key.as_ref()) {
                framing = *want;
            }
        }
        let doc = self.slab.len();
        self.slab = write(std::mem::take(&mut self.slab));
        let doc_end = self.slab.len();
        if framing != 0 {
            self.slab.push('\n');
        }
        Payload::staged(start, doc, doc_end, self.slab.len(), framing)
    }

    /// The staged records' slabs are complete: their payloads point into
    /// them.
    pub(super) fn seal(&mut self, slabs: &Arc<SlabPool>) {
        self.seal_slab(slabs);
        self.sealed = 0;
    }

    /// The slab being written is complete: the records staged into it
    /// point into it, and the next record starts another.
    fn seal_slab(&mut self, slabs: &Arc<SlabPool>) {
        let mut text = std::mem::take(&mut self.slab);
        // Room for the record that crosses MAX_SLAB too: a slab that
        // grew (doubling, copied) then shrank (copied again) at its seal
        // cost CPU and fragmented memory.
        let hint = text
            .len()
            .saturating_add(text.len() / 8)
            .min(MAX_SLAB + MAX_SLAB / 8);
        // The read's largest slab, not its last: a read that fills
        // several ends with a short one, and the next read as large grew
        // its first slab from that, copied at each doubling.
        self.hint = if self.sealed == 0 {
            hint
        } else {
            self.hint.max(hint)
        };
        // Held until its last record is delivered: no larger a slab size
        // than it needs (a read of one short line must not keep a large
        // buffer).
        let size = slab_size(text.len());
        if text.capacity() > size {
            text.shrink_to(size);
        }
        let slab = Arc::new(Slab::new(text, Some(slabs.clone())));
        for r in self.records.iter_mut().skip(self.sealed) {
            r.payload.attach(&slab);
        }
        self.sealed = self.records.len();
    }
}

/// What a reader routed and encoded since its last push: records per route
/// (in order) and match counts, plus scratch reused for every event.
pub(super) struct Batch {
    /// Indexed like the routes of the pipeline the records were routed by.
    pub(super) routes: Vec<StagedRoute>,
    /// Records in `routes`.
    pub(super) records: usize,
    pub(super) matches: Vec<crate::router::RouteMatch<'static>>,
    pub(super) errors: Vec<ConversionError>,
}

impl Batch {
    /// Lend the staging slots (their lists, encoder buffers and slab size
    /// hints) to `pool` between reads: only when nothing is staged, and
    /// all of them or none.
    pub(super) fn lend(&mut self, pool: &StagingPool) -> bool {
        if self.records > 0 || self.routes.iter().any(|r| !r.is_idle()) {
            return false;
        }
        pool.put(std::mem::take(&mut self.routes));
        true
    }

    /// Stage into slots another reader lent to `pool`, if it holds any and
    /// this batch has none (it lent its own, or never had any).
    pub(super) fn borrow(&mut self, pool: &StagingPool) {
        if self.routes.is_empty() {
            if let Some(routes) = pool.take() {
                self.routes = routes;
            }
        }
    }
}

impl StagedRoute {
    /// Nothing staged: only allocations and hints, none of them a record's.
    fn is_idle(&self) -> bool {
        self.records.is_empty() && self.slab.is_empty() && self.matched == 0 && self.sealed == 0
    }
}

/// Staging slots of a listener's readers that do not keep their own
/// between reads (a TCP connection of many, which waits for its turn as
/// often as it reads), for the next reader that reads: a connection of a
/// thousand, each lending its slots as it waits and staging every read
/// into fresh ones, grew its lists and its slabs from nothing on every
/// read (at 1,000 connections most of the instructions they cost over one;
/// figures under *Performance* in README.md). At most `max` sets, as many
/// as read at once.
pub(crate) struct StagingPool {
    sets: Mutex<Vec<Vec<StagedRoute>>>,
    max: usize,
}

impl StagingPool {
    pub(crate) fn new(max: usize) -> StagingPool {
        StagingPool {
            sets: Mutex::new(Vec::new()),
            max,
        }
    }

    fn put(&self, routes: Vec<StagedRoute>) {
        if routes.is_empty() {
            return;
        }
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if sets.len() < self.max {
            sets.push(routes);
        }
    }

    fn take(&self) -> Option<Vec<StagedRoute>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Sets held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.sets.lock().map_or(0, |s| s.len())
    }
}

/// An empty vector of route matches borrowing from one event, with its
/// allocation, for the next event: collected in place (same layout), so no
/// allocation per frame.
#[allow(clippy::unnecessary_filter_map)] // `filter` cannot change the lifetime
pub(super) fn recycle<'b>(
    matches: Vec<crate::router::RouteMatch<'_>>,
) -> Vec<crate::router::RouteMatch<'b>> {
    matches.into_iter().filter_map(|_| None).collect()
}
