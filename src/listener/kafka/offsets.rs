//! Which offsets may be committed: per assigned partition, the records
//! consumed in order and whether each is done with (every route fed by it
//! delivered it, spilled it, or dropped it and counted). The commit point
//! is one past the last record of the done prefix, so a record not yet
//! done holds back every later offset of its partition: after a crash
//! the new owner re-reads from there (duplicates absorbed by `_id`).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::record::AckTarget;

/// One assignment of one partition.
struct Part {
    /// Names this assignment in the acks; a later assignment of the same
    /// partition gets a new one, so an ack of a revoked one is ignored.
    slot: u64,
    topic: String,
    partition: i32,
    /// Offsets consumed and not yet passed by the commit point, in
    /// order, each with whether it is done.
    pending: VecDeque<(i64, bool)>,
    /// The offset to commit (one past the done prefix), once there is one.
    commit: Option<i64>,
    /// The last offset committed (or sent to be).
    committed: Option<i64>,
    paused: bool,
}

#[derive(Default)]
struct State {
    next_slot: u64,
    parts: Vec<Part>,
}

/// The offsets of a consumer's assigned partitions; the records' acks
/// report here.
#[derive(Default)]
pub(super) struct Offsets(Mutex<State>);

/// A (topic, partition, offset) to commit.
pub(super) type Commit = (String, i32, i64);
/// A (topic, partition).
pub(super) type Partition = (String, i32);

impl Offsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `topic`/`partition` is assigned to this consumer.
    pub(super) fn assign(&self, topic: &str, partition: i32) {
        let mut st = self.lock();
        if st
            .parts
            .iter()
            .any(|p| p.topic == topic && p.partition == partition)
        {
            return;
        }
        st.next_slot += 1;
        let slot = st.next_slot;
        st.parts.push(Part {
            slot,
            topic: topic.to_owned(),
            partition,
            pending: VecDeque::new(),
            commit: None,
            committed: None,
            paused: false,
        });
    }

    /// `topic`/`partition` is taken away: its commit point (what is
    /// done) is returned to be committed now; what is not done will be
    /// re-read by the new owner.
    pub(super) fn revoke(&self, topic: &str, partition: i32) -> Option<Commit> {
        let mut st = self.lock();
        let i = st
            .parts
            .iter()
            .position(|p| p.topic == topic && p.partition == partition)?;
        let p = st.parts.swap_remove(i);
        // Even if stored already: librdkafka may not have committed it yet.
        p.commit.map(|c| (p.topic, p.partition, c))
    }

    /// Every partition's commit point, stored or not (the last commit,
    /// at shutdown).
    pub(super) fn commit_points(&self) -> Vec<Commit> {
        let st = self.lock();
        st.parts
            .iter()
            .filter_map(|p| p.commit.map(|c| (p.topic.clone(), p.partition, c)))
            .collect()
    }

    /// A record was consumed: its slot, for its ack. `None` when its
    /// partition is not assigned (revoked since) or the offset is not past
    /// the last one registered (a record already in flight, fetched again
    /// after a rebalance): it is not handed on.
    pub(super) fn consumed(&self, topic: &str, partition: i32, offset: i64) -> Option<u64> {
        let mut st = self.lock();
        let p = st
            .parts
            .iter_mut()
            .find(|p| p.topic == topic && p.partition == partition)?;
        let last = p
            .pending
            .back()
            .map(|(o, _)| *o)
            .or(p.commit.map(|c| c - 1));
        if last.is_some_and(|last| offset <= last) {
            return None;
        }
        p.pending.push_back((offset, false));
        Some(p.slot)
    }

    /// Offsets to store for the next commit now (each marked as stored).
    pub(super) fn to_commit(&self) -> Vec<Commit> {
        let mut st = self.lock();
        let mut out = Vec::new();
        for p in &mut st.parts {
            if let Some(c) = p.commit.filter(|c| Some(*c) != p.committed) {
                p.committed = Some(c);
                out.push((p.topic.clone(), p.partition, c));
            }
        }
        out
    }

    /// A commit (or a store) failed: every commit point again next time.
    pub(super) fn commit_failed(&self) {
        for p in &mut self.lock().parts {
            p.committed = None;
        }
    }

    /// Whether `topic`/`partition` is assigned to this consumer now.
    pub(super) fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        self.lock()
            .parts
            .iter()
            .any(|p| p.topic == topic && p.partition == partition)
    }

    /// Records consumed and not done with, all partitions.
    pub(super) fn in_flight(&self) -> usize {
        self.lock().parts.iter().map(|p| p.pending.len()).sum()
    }

    /// Partitions whose paused state should change: paused when `hold`
    /// (the pipeline is full) or `max_in_flight` records are in flight,
    /// resumed below half of it. Returns (to pause, to resume, paused now).
    pub(super) fn pauses(
        &self,
        hold: bool,
        max_in_flight: usize,
    ) -> (Vec<Partition>, Vec<Partition>, usize) {
        let mut st = self.lock();
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for p in &mut st.parts {
            let n = p.pending.len();
            let want = hold || n >= max_in_flight || (p.paused && n > max_in_flight / 2);
            if want != p.paused {
                p.paused = want;
                let tp = (p.topic.clone(), p.partition);
                if want {
                    pause.push(tp)
                } else {
                    resume.push(tp)
                }
            }
        }
        let paused = st.parts.iter().filter(|p| p.paused).count();
        (pause, resume, paused)
    }
}

impl AckTarget for Offsets {
    fn done(&self, slot: u64, offset: i64) {
        let mut st = self.lock();
        let Some(p) = st.parts.iter_mut().find(|p| p.slot == slot) else {
            // Revoked since: the new owner reads it again.
            return;
        };
        match p.pending.binary_search_by_key(&offset, |(o, _)| *o) {
            Ok(i) => p.pending[i].1 = true,
            Err(_) => return,
        }
        while let Some(&(o, true)) = p.pending.front() {
            p.pending.pop_front();
            p.commit = Some(o + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Ack;
    use std::sync::Arc;

    /// The commit point moves only over a done prefix: a record still in
    /// flight holds back later ones that are done.
    #[test]
    fn commits_stop_at_the_first_record_not_done() {
        let offsets = Arc::new(Offsets::default());
        offsets.assign("t", 0);
        let acks: Vec<Ack> = [10, 11, 13, 14]
            .iter()
            .map(|&o| Ack::new(offsets.clone(), offsets.consumed("t", 0, o).unwrap(), o))
            .collect();
        let mut acks = acks.into_iter();
        let (a10, a11, a13, a14) = (
            acks.next().unwrap(),
            acks.next().unwrap(),
            acks.next().unwrap(),
            acks.next().unwrap(),
        );
        drop(a11);
        drop(a14);
        assert_eq!(offsets.to_commit(), vec![], "10 not done yet");
        drop(a10);
        assert_eq!(offsets.to_commit(), vec![("t".into(), 0, 12)]);
        assert_eq!(offsets.to_commit(), vec![], "committed once");
        assert_eq!(offsets.in_flight(), 2);
        drop(a13);
        assert_eq!(offsets.to_commit(), vec![("t".into(), 0, 15)]);
        assert_eq!(offsets.in_flight(), 0);
    }

    /// A revoked partition's late acks are ignored; its done offsets are
    /// handed back for the revoke's own commit; a new assignment starts clean.
    #[test]
    fn revoke_returns_the_done_point_and_ignores_late_acks() {
        let offsets = Arc::new(Offsets::default());
        offsets.assign("t", 1);
        let a = Ack::new(offsets.clone(), offsets.consumed("t", 1, 0).unwrap(), 0);
        let b = Ack::new(offsets.clone(), offsets.consumed("t", 1, 1).unwrap(), 1);
        drop(a);
        assert_eq!(offsets.revoke("t", 1), Some(("t".into(), 1, 1)));
        offsets.assign("t", 1);
        drop(b);
        assert_eq!(
            offsets.to_commit(),
            vec![],
            "b belonged to the old assignment"
        );
        assert_eq!(offsets.in_flight(), 0);
        assert_eq!(offsets.consumed("t", 2, 0), None, "not assigned");
        let c = offsets.consumed("t", 1, 5).unwrap();
        assert_eq!(offsets.consumed("t", 1, 5), None, "already in flight");
        drop(Ack::new(offsets.clone(), c, 5));
        assert_eq!(offsets.consumed("t", 1, 4), None, "behind the commit point");
    }

    #[test]
    fn partitions_pause_at_max_in_flight_and_resume_below_half() {
        let offsets = Arc::new(Offsets::default());
        offsets.assign("t", 0);
        let mut acks: VecDeque<Ack> = (0..4)
            .map(|o| Ack::new(offsets.clone(), offsets.consumed("t", 0, o).unwrap(), o))
            .collect();
        assert_eq!(offsets.pauses(false, 4), (vec![("t".into(), 0)], vec![], 1));
        acks.pop_front();
        assert_eq!(
            offsets.pauses(false, 4),
            (vec![], vec![], 1),
            "3 > half of 4"
        );
        acks.pop_front();
        assert_eq!(offsets.pauses(false, 4), (vec![], vec![("t".into(), 0)], 0));
        assert_eq!(
            offsets.pauses(true, 4),
            (vec![("t".into(), 0)], vec![], 1),
            "held"
        );
    }
}
