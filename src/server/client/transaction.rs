//! MULTI's queue, EXEC and WATCH for one connection (`client.rs`): a
//! transaction goes to its shard as one command ([`Op::Exec`]), one log
//! entry applied whole on every replica or not at all; WATCH reads the
//! keys' versions linearizably before the connection reads on.

use super::*;

/// What a queued command counts beyond its arguments' bytes (its share of
/// the transaction's encoding and framing), so that a transaction of many
/// tiny commands is bounded too.
pub(super) const QUEUED_COMMAND_OVERHEAD_BYTES: usize = 16;

/// A command inside MULTI, of `bytes` (its arguments and overhead): queue
/// it, or refuse it (the transaction then aborts at EXEC). A transaction is
/// one command at EXEC, so one whose queued commands outgrow a batch could
/// never run: it is refused at the command that crosses the bound, rather
/// than kept in memory without limit.
pub(super) fn queue_in_multi(conn: &Rc<Connection>, request: Result<ClientRequest, String>, bytes: usize) {
    let refusal = match &request {
        // CLIENT REPLY too: Redis runs it inside EXEC, silencing the rest
        // of EXEC's own reply, which leaves the client a broken stream.
        Ok(ClientRequest::Auth { .. } | ClientRequest::Hello { .. } | ClientRequest::ClientReply(_)) => {
            Some("ERR Command not allowed inside a transaction".to_string())
        }
        Ok(ClientRequest::Kv(op)) if op.is_keyspace_wide() && conn.shards() > 1 => Some(ERROR_KEYSPACE_IN_MULTI.into()),
        Ok(ClientRequest::Scan { .. } | ClientRequest::RandomKey) if conn.shards() > 1 => {
            Some(ERROR_KEYSPACE_IN_MULTI.into())
        }
        Ok(ClientRequest::Kv(op)) => {
            let watched_shard = conn.watching.borrow().as_ref().map(|w| w.shard);
            let multi_shard = conn.multi.borrow().as_ref().and_then(|m| m.shard);
            let shard = if op.is_keyspace_wide() { Some(Some(0)) } else { shard_of_keys(op.keys(), conn.shards()) };
            match shard {
                None => Some(ERROR_CROSSSLOT.to_string()),
                Some(Some(shard)) if multi_shard.or(watched_shard).is_some_and(|s| s != shard) => {
                    Some(ERROR_CROSSSLOT.to_string())
                }
                Some(Some(shard)) => {
                    conn.multi.borrow_mut().as_mut().expect("in MULTI").shard = Some(shard);
                    None
                }
                Some(None) => None,
            }
        }
        _ => None,
    };
    let batch_bytes_max = conn.shared.file.tuning.batch_bytes_max;
    let refusal = refusal.or_else(|| {
        let mut multi = conn.multi.borrow_mut();
        let multi = multi.as_mut().expect("in MULTI");
        if multi.dirty {
            return None;
        }
        multi.queued_bytes = multi.queued_bytes.saturating_add(bytes);
        (multi.queued_bytes > batch_bytes_max).then(|| {
            format!(
                "ERR transaction larger than the batch limit ({} bytes queued; batch_bytes_max is {batch_bytes_max})",
                multi.queued_bytes
            )
        })
    });
    if let Some(message) = refusal {
        refuse_command(conn, &message);
        return;
    }
    let mut multi = conn.multi.borrow_mut();
    let multi = multi.as_mut().expect("in MULTI");
    // A dirty transaction aborts at EXEC: acknowledged as Redis does, but not kept.
    if !multi.dirty {
        multi.queued.push(request);
        conn.info.multi.store(multi.queued.len() as i64, Relaxed);
    }
    conn.push(Pending::Ready(Bytes::from_static(b"+QUEUED\r\n")));
}

/// EXEC: one command to the transaction's shard, the connection's own
/// commands answered in place.
pub(super) async fn exec(conn: &Rc<Connection>) {
    if !conn.in_multi() {
        conn.push_error("ERR EXEC without MULTI");
        return;
    }
    let (multi, watching) = conn.end_transaction();
    let multi = multi.unwrap_or_default();
    if multi.dirty {
        conn.push_error("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    let mut ops = Vec::new();
    let mut parts = Vec::new();
    for queued in multi.queued {
        let mut out = BytesMut::new();
        match queued {
            Err(message) => {
                resp::error(&mut out, &message);
                parts.push(Part::Local(out.freeze()));
            }
            Ok(ClientRequest::Kv(op)) => {
                ops.push(op);
                parts.push(Part::Store);
            }
            Ok(ClientRequest::Scan { cursor, count, pattern, type_filter }) => {
                // A single shard (checked at queue time): the cursor is the bucket.
                ops.push(Op::Scan { from: cursor & BUCKET_MAX, count, pattern, type_filter });
                parts.push(Part::Scan);
            }
            Ok(ClientRequest::RandomKey) => {
                ops.push(Op::RandomKey { point: rand_u64(conn) });
                parts.push(Part::Store);
            }
            Ok(local) => {
                answer_locally(conn, local, &mut out);
                parts.push(Part::Local(out.freeze()));
            }
        }
    }
    if ops.is_empty() && watching.is_none() {
        let mut out = BytesMut::new();
        resp::array_header(&mut out, parts.len());
        for part in parts {
            if let Part::Local(bytes) = part {
                out.extend_from_slice(&bytes);
            }
        }
        conn.push(Pending::Ready(out.freeze()));
        return;
    }
    let shard = multi.shard.or(watching.as_ref().map(|w| w.shard)).unwrap_or(0);
    let (watched, removals) = watching.map_or((Vec::new(), 0), |w| (w.watched, w.removals));
    submit_to(conn, shard, Op::Exec { ops, watched, removals }, Shape::Exec { parts }).await;
}

/// WATCH: read the keys' versions now, before anything further of this
/// connection is read.
pub(super) async fn watch(conn: &Rc<Connection>, keys: Vec<Bytes>) {
    let shard = match shard_of_keys(keys.iter().collect(), conn.shards()) {
        Some(Some(shard)) => shard,
        _ => {
            conn.push_error(ERROR_CROSSSLOT);
            return;
        }
    };
    if conn.watching.borrow().as_ref().is_some_and(|w| w.shard != shard) {
        conn.push_error(ERROR_CROSSSLOT);
        return;
    }
    let (cell, seq) = send_to(conn, shard, Op::Watch { keys: keys.clone() }).await;
    let reply = receive(&cell).await;
    conn.sessions.borrow_mut()[shard].answered(seq, &reply);
    let Reply::Array(items) = reply else {
        let mut out = BytesMut::new();
        resp::encode_reply(&mut out, &reply, conn.proto());
        conn.push(Pending::Ready(out.freeze()));
        return;
    };
    let mut items = items.into_iter();
    let removals = match items.next() {
        Some(Reply::Int(n)) => n as u64,
        _ => 0,
    };
    let mut watching = conn.watching.borrow_mut();
    let state = watching.get_or_insert(Watching { shard, watched: Vec::new(), removals });
    state.removals = state.removals.min(removals);
    for (key, version) in keys.into_iter().zip(items) {
        let version = match version {
            Reply::Int(v) => Some(v as u64),
            _ => None,
        };
        state.watched.push(Watched { key, version });
    }
    conn.info.watching.store(state.watched.len() as u64, Relaxed);
    conn.push_ok();
}
