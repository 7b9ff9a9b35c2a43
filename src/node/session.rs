//! The entry side of a client session (one client connection to one
//! shard): it numbers commands and fills in what the store needs for
//! exactly-once, in-order apply (`kv/session.rs`): `ack`, the lowest
//! number not yet answered, and `prev`, the previous command through the
//! log. The server's connections and the simulator's clients both use it.

use std::collections::VecDeque;

use crate::kv::{session_id, Command, Op, Reply, SessionId, ERROR_SESSION_EXPIRED};
use crate::paxos::NodeId;

#[derive(Clone, Debug)]
pub struct ClientSession {
    /// The entry node, which owns the session id.
    node: NodeId,
    /// Allocated lazily, at the first command: an idle connection holds no
    /// slot in any store.
    session: Option<SessionId>,
    next_seq: u64,
    /// Commands sent and not yet answered, in ascending order (numbers
    /// are handed out in order; answers mostly come in order, and a
    /// removal at the front is cheap).
    outstanding: VecDeque<u64>,
    /// The last command that went through the log (0: none yet).
    last_logged: u64,
}

impl ClientSession {
    pub fn new(node: NodeId) -> ClientSession {
        ClientSession { node, session: None, next_seq: 1, outstanding: VecDeque::new(), last_logged: 0 }
    }

    /// The next command of this session. `through_log`: the op will be
    /// proposed (a write, or any op when reads go through the log).
    /// `counter` yields a value greater than every earlier one on this node
    /// (across restarts): it names a new session.
    pub fn command(&mut self, op: Op, through_log: bool, counter: impl FnOnce() -> u64) -> Command {
        let node = self.node;
        let session = *self.session.get_or_insert_with(|| session_id(node, counter()));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding.push_back(seq);
        let ack = *self.outstanding.front().expect("just pushed");
        let prev = if through_log { std::mem::replace(&mut self.last_logged, seq) } else { self.last_logged };
        Command { session, seq, ack, prev, op }
    }

    /// The answer to command `seq` reached the client. A session the store
    /// evicted is replaced by a fresh one for the next command.
    pub fn answered(&mut self, seq: u64, reply: &Reply) {
        if let Ok(at) = self.outstanding.binary_search(&seq) {
            self.outstanding.remove(at);
        }
        if matches!(reply, Reply::Error(message) if message == ERROR_SESSION_EXPIRED) {
            self.session = None;
            self.outstanding.clear();
            self.last_logged = 0;
        }
    }

    pub fn session(&self) -> Option<SessionId> {
        self.session
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn get() -> Op {
        Op::Get { key: Bytes::from_static(b"k") }
    }

    #[test]
    fn ack_is_the_lowest_unanswered_and_prev_chains_the_logged_commands() {
        let mut s = ClientSession::new(2);
        let a = s.command(get(), true, || 7);
        let b = s.command(get(), false, || unreachable!("the session exists"));
        let c = s.command(get(), true, || unreachable!());
        assert_eq!((a.seq, a.ack, a.prev), (1, 1, 0));
        assert_eq!((b.seq, b.ack, b.prev), (2, 1, 1), "a read does not move prev");
        assert_eq!((c.seq, c.ack, c.prev), (3, 1, 1));
        assert_eq!(a.session, session_id(2, 7));
        s.answered(1, &Reply::Ok);
        s.answered(3, &Reply::Ok);
        let d = s.command(get(), true, || unreachable!());
        assert_eq!((d.ack, d.prev), (2, 3));
    }

    #[test]
    fn an_expired_session_is_replaced() {
        let mut s = ClientSession::new(1);
        let a = s.command(get(), true, || 5);
        s.answered(a.seq, &Reply::Error(ERROR_SESSION_EXPIRED.to_string()));
        let b = s.command(get(), true, || 9);
        assert_eq!(b.session, session_id(1, 9));
        assert_eq!((b.ack, b.prev), (b.seq, 0));
    }
}
