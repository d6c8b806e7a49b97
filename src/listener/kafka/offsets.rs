//! Which offsets may be committed: per assigned partition, the records
//! consumed in order and whether each is done with (every route fed by it
//! delivered it, spilled it, or dropped it and counted). The commit point
//! is one past the last record of the done prefix, so a record not yet
//! done holds back every later offset of its partition: after a crash
//! the new owner re-reads from there (duplicates absorbed by `_id`).
//!
//! An offset below the partition's done point (or below every offset in
//! flight) is a reset: the topic was deleted and created again, or an
//! operator moved the group's offsets back. The partition's tracking
//! starts over at that offset (acks of the records before it are
//! ignored, like a revoked partition's), the reset is reported
//! ([`Offsets::take_resets`]) and its next commit point is committed at
//! once ([`Offsets::to_commit_now`]): librdkafka's own commits only ever
//! move a partition's committed offset forward.

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
    /// Reset since its last commit: the next one is made at once, not
    /// left to librdkafka (which would not take an offset back).
    commit_now: bool,
}

impl Part {
    /// Offsets below this are done with (the commit point), else the
    /// oldest offset in flight; `None` when nothing was consumed yet.
    fn floor(&self) -> Option<i64> {
        self.commit.or(self.pending.front().map(|(o, _)| *o))
    }
}

/// An offset that went back: (topic, partition, the floor it went below,
/// the offset).
pub(super) type Reset = (String, i32, i64, i64);

#[derive(Default)]
struct State {
    next_slot: u64,
    parts: Vec<Part>,
    /// Resets not yet reported.
    resets: Vec<Reset>,
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
            commit_now: false,
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
    /// partition is not assigned (revoked since) or the offset is in
    /// flight already (fetched again after a rebalance): it is not handed
    /// on. An offset below the partition's floor is a reset (see the
    /// module's text): tracking starts over at it, under a new slot.
    pub(super) fn consumed(&self, topic: &str, partition: i32, offset: i64) -> Option<u64> {
        let mut st = self.lock();
        let i = st
            .parts
            .iter()
            .position(|p| p.topic == topic && p.partition == partition)?;
        let floor = st.parts[i].floor();
        if let Some(floor) = floor.filter(|f| offset < *f) {
            st.next_slot += 1;
            let slot = st.next_slot;
            let p = &mut st.parts[i];
            p.slot = slot;
            p.pending.clear();
            p.commit = None;
            p.committed = None;
            p.commit_now = true;
            st.resets.push((topic.to_owned(), partition, floor, offset));
        }
        let p = &mut st.parts[i];
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

    /// The resets since the last call.
    pub(super) fn take_resets(&self) -> Vec<Reset> {
        std::mem::take(&mut self.lock().resets)
    }

    /// Commit points to commit now, not store: those of partitions reset
    /// since their last commit (each marked as committed).
    pub(super) fn to_commit_now(&self) -> Vec<Commit> {
        let mut st = self.lock();
        let mut out = Vec::new();
        for p in st.parts.iter_mut().filter(|p| p.commit_now) {
            if let Some(c) = p.commit {
                p.commit_now = false;
                p.committed = Some(c);
                out.push((p.topic.clone(), p.partition, c));
            }
        }
        out
    }

    /// The commit of [`Offsets::to_commit_now`]'s `commits` failed: they
    /// are committed at once again next time.
    pub(super) fn commit_now_failed(&self, commits: &[Commit]) {
        let mut st = self.lock();
        for p in &mut st.parts {
            if commits
                .iter()
                .any(|(t, n, _)| *t == p.topic && *n == p.partition)
            {
                p.commit_now = true;
                p.committed = None;
            }
        }
    }

    /// Of an assigned partition (`None`: not assigned here): whether it is
    /// paused, and its floor (offsets below it are done with).
    pub(super) fn position(&self, topic: &str, partition: i32) -> Option<(bool, Option<i64>)> {
        self.lock()
            .parts
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .map(|p| (p.paused, p.floor()))
    }

    /// The paused partitions with a floor, each with it.
    pub(super) fn paused_floors(&self) -> Vec<Commit> {
        self.lock()
            .parts
            .iter()
            .filter(|p| p.paused)
            .filter_map(|p| Some((p.topic.clone(), p.partition, p.floor()?)))
            .collect()
    }

    /// Offsets to store for the next commit now (each marked as stored).
    pub(super) fn to_commit(&self) -> Vec<Commit> {
        let mut st = self.lock();
        let mut out = Vec::new();
        for p in st.parts.iter_mut().filter(|p| !p.commit_now) {
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
        // Behind the commit point: the offsets went back (a reset), read on.
        assert!(offsets.consumed("t", 1, 4).is_some());
        assert_eq!(offsets.take_resets(), vec![("t".into(), 1, 6, 4)]);
    }

    /// An offset below the done point (the topic created again, offsets
    /// from 0) is a reset: registered and handed on, reported once, the
    /// old records' late acks ignored, and its commit point committed at
    /// once (librdkafka would not take the committed offset back), then
    /// stored as usual again.
    #[test]
    fn an_offset_below_the_done_point_is_a_reset() {
        let offsets = Arc::new(Offsets::default());
        offsets.assign("t", 0);
        for o in 200..202 {
            drop(Ack::new(
                offsets.clone(),
                offsets.consumed("t", 0, o).unwrap(),
                o,
            ));
        }
        let late = Ack::new(offsets.clone(), offsets.consumed("t", 0, 202).unwrap(), 202);
        assert_eq!(offsets.to_commit(), vec![("t".into(), 0, 202)]);
        assert_eq!(offsets.consumed("t", 0, 202), None, "in flight already");
        assert_eq!(offsets.take_resets(), vec![]);

        let slot = offsets.consumed("t", 0, 0).expect("a reset is handed on");
        assert_eq!(offsets.take_resets(), vec![("t".into(), 0, 202, 0)]);
        assert_eq!(offsets.take_resets(), vec![], "reported once");
        assert_eq!(
            offsets.in_flight(),
            1,
            "the old record is no longer tracked"
        );
        drop(late);
        assert_eq!(offsets.to_commit_now(), vec![], "0 not done yet");
        drop(Ack::new(offsets.clone(), slot, 0));
        let one = offsets.consumed("t", 0, 1).unwrap();
        assert_eq!(offsets.to_commit(), vec![], "not left to librdkafka");
        assert_eq!(offsets.to_commit_now(), vec![("t".into(), 0, 1)]);
        offsets.commit_now_failed(&[("t".into(), 0, 1)]);
        assert_eq!(offsets.to_commit_now(), vec![("t".into(), 0, 1)], "again");
        drop(Ack::new(offsets.clone(), one, 1));
        assert_eq!(offsets.to_commit_now(), vec![], "committed once");
        assert_eq!(offsets.to_commit(), vec![("t".into(), 0, 2)]);
    }

    /// Nothing done yet: an offset below every one in flight is a reset
    /// too; the floor is the oldest in flight, then the commit point.
    #[test]
    fn an_offset_below_every_one_in_flight_is_a_reset() {
        let offsets = Arc::new(Offsets::default());
        offsets.assign("t", 0);
        assert_eq!(offsets.position("t", 0), Some((false, None)));
        assert_eq!(offsets.position("t", 1), None, "not assigned");
        let a = offsets.consumed("t", 0, 50).unwrap();
        assert_eq!(offsets.position("t", 0), Some((false, Some(50))));
        let b = offsets.consumed("t", 0, 3).unwrap();
        assert_ne!(a, b, "a new slot");
        assert_eq!(offsets.take_resets(), vec![("t".into(), 0, 50, 3)]);
        drop(Ack::new(offsets.clone(), b, 3));
        assert_eq!(offsets.position("t", 0), Some((false, Some(4))));
        assert_eq!(offsets.paused_floors(), vec![]);
        offsets.pauses(true, 10);
        assert_eq!(offsets.paused_floors(), vec![("t".into(), 0, 4)]);
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
