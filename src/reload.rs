//! Reload requests (SIGHUP, `POST /reload`) and how a burst of them is
//! served; the reload itself (re-read, rebind, swap the generation) is in
//! `service`.

use tokio::sync::mpsc::Receiver;
use tokio::sync::oneshot;

/// The answer to a reload: what changed, or why the new config was refused.
pub(crate) type Answer = Result<String, String>;

/// A request to re-read the configuration (SIGHUP, `POST /reload`); the
/// answer says what changed or why the new config was refused.
///
/// Requests that wait while a reload runs are served together by the next
/// one (which re-reads the file after they arrived): a burst of requests
/// costs at most two reloads, and each answer is the outcome of a reload
/// that began after its request.
pub(crate) struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Answer>>,
}

/// `first` and every request already waiting behind it: one reload answers
/// them all (the channel is bounded, so this is too). The replies, in
/// arrival order; `None` for a request that wants no answer (SIGHUP).
pub(crate) fn coalesce(
    first: ReloadRequest,
    reloads: &mut Receiver<ReloadRequest>,
) -> Vec<Option<oneshot::Sender<Answer>>> {
    let mut replies = vec![first.reply];
    while let Ok(more) = reloads.try_recv() {
        replies.push(more.reply);
    }
    replies
}

/// Send `answer` to every requester still waiting for it.
pub(crate) fn answer_all(replies: Vec<Option<oneshot::Sender<Answer>>>, answer: &Answer) {
    for reply in replies.into_iter().flatten() {
        let _ = reply.send(answer.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_waiting_behind_the_first_share_its_answer() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let mut answers = Vec::new();
        for _ in 0..3 {
            let (reply, answer) = oneshot::channel();
            tx.try_send(ReloadRequest { reply: Some(reply) }).unwrap();
            answers.push(answer);
        }
        // SIGHUP: no one waits for the answer.
        tx.try_send(ReloadRequest { reply: None }).unwrap();
        let first = rx.try_recv().unwrap();
        let replies = coalesce(first, &mut rx);
        assert_eq!(replies.len(), 4, "the first and the three behind it");
        assert!(rx.try_recv().is_err(), "the channel is drained");
        answer_all(replies, &Ok("routes: a".into()));
        for mut a in answers {
            assert_eq!(a.try_recv().unwrap(), Ok("routes: a".to_owned()));
        }
    }

    #[test]
    fn a_request_after_the_coalesced_ones_waits_for_the_next_reload() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        tx.try_send(ReloadRequest { reply: None }).unwrap();
        let first = rx.try_recv().unwrap();
        assert_eq!(coalesce(first, &mut rx).len(), 1);
        tx.try_send(ReloadRequest { reply: None }).unwrap();
        assert!(rx.try_recv().is_ok(), "left for the next reload");
    }
}
