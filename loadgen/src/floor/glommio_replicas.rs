//! `--runtime glommio`: the floor's messages with each replica on a
//! glommio executor, as paxoskv's nodes run (the disk writes, if any,
//! stay blocking, on the executor's thread).
//!
//! The leader is a few tasks, shaped as a node's are: a task per client
//! connection reads its requests (a read is answered there and then, a
//! write handed on and its answer awaited), the *replicator* sends the
//! writes that arrived in one pass of the executor to every follower as one
//! batch (the wire format of the blocking replicas: `[count u32][count
//! requests]`, answered with the batch's number) and makes it durable here,
//! and a task per follower reads its answers and answers the batches a
//! majority has.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::disk::Disk;
use super::{ACK_BYTES, READ};

/// Run `task` on a glommio executor made on this thread (unbound, like a
/// local paxoskv cluster's), until it ends.
pub(super) fn on_glommio<F, T, R>(name: &str, task: F) -> Result<R, String>
where
    F: FnOnce() -> T,
    T: std::future::Future<Output = Result<R, String>>,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?
        .run(task())
}

/// A blocking socket handed to the calling glommio executor.
fn to_glommio(stream: TcpStream) -> Result<glommio::net::TcpStream, String> {
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    // SAFETY: the descriptor comes out of a `TcpStream` that gives it up.
    Ok(unsafe { glommio::net::TcpStream::from_raw_fd(stream.into_raw_fd()) })
}

/// A follower on glommio: each batch in, made durable if asked, answered
/// with its number; it ends when the leader hangs up.
pub(super) async fn glommio_follower(
    stream: TcpStream,
    mut disk: Option<Disk>,
    request_bytes: usize,
) -> Result<(), String> {
    let mut stream = to_glommio(stream)?;
    let mut header = [0u8; 4];
    let mut body = Vec::new();
    for batch in 0u64.. {
        match stream.read_exact(&mut header).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("follower: reading: {e}")),
        }
        body.resize(u32::from_le_bytes(header) as usize * request_bytes, 0);
        stream.read_exact(&mut body).await.map_err(|e| format!("follower: reading a batch: {e}"))?;
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        stream.write_all(&batch.to_le_bytes()).await.map_err(|e| format!("follower: answering: {e}"))?;
    }
    Ok(())
}

/// What the leader's tasks share: the writes waiting for the next batch,
/// and the batches sent and not yet answered.
struct LeaderState {
    /// The next batch as it goes out (a count, filled in when it is sent,
    /// then the requests read since the last batch), and their clients.
    batch: Vec<u8>,
    batch_clients: Vec<usize>,
    /// Per follower: batches below this are durable there.
    acks: Vec<u64>,
    /// Batches sent (each durable here by then: the disk write is blocking).
    sent: u64,
    /// The clients of each batch sent and not yet answered, oldest first.
    unanswered: VecDeque<(u64, Vec<usize>)>,
    /// A clients' task waits on its channel for its write's answer.
    answers: Vec<LocalSender<()>>,
    /// Writes replicated.
    replicated: u64,
    /// The leader has hung up on the followers (the end of the run).
    hung_up: bool,
    /// The first error a task met.
    failure: Option<String>,
}

impl LeaderState {
    /// Answer the oldest batches that a majority (the leader and half the
    /// followers) has.
    fn answer_ready(&mut self) {
        let needed = self.acks.len() / 2;
        while let Some((number, _)) = self.unanswered.front() {
            if self.acks.iter().filter(|a| **a > *number).count() < needed {
                break;
            }
            let (_, clients) = self.unanswered.pop_front().expect("a front");
            for c in clients {
                // Unbounded: never full. After a failure there are no senders.
                if let Some(answer) = self.answers.get(c) {
                    let _ = answer.try_send(());
                }
            }
        }
    }

    /// Record the first error; every client task waiting for an answer
    /// then hears its channel close and ends, closing its connection.
    fn fail(&mut self, error: String) {
        self.failure.get_or_insert(error);
        self.answers.clear();
    }
}

/// A leader on glommio for `clients`: reads (`--read-ratio`) answered at
/// once, writes replicated in batches (see the module's note). Returns the
/// writes it replicated.
pub(super) async fn glommio_leader(
    clients: Vec<TcpStream>,
    followers: Vec<TcpStream>,
    mut disk: Option<Disk>,
    request_bytes: usize,
) -> Result<u64, String> {
    let (kick, kicked) = local_channel::new_bounded::<()>(1);
    let mut answer_senders = Vec::new();
    let mut answer_receivers = Vec::new();
    for _ in &clients {
        let (tx, rx) = local_channel::new_unbounded::<()>();
        answer_senders.push(tx);
        answer_receivers.push(rx);
    }
    let state = Rc::new(RefCell::new(LeaderState {
        batch: vec![0; 4],
        batch_clients: Vec::new(),
        acks: vec![0; followers.len()],
        sent: 0,
        unanswered: VecDeque::new(),
        answers: answer_senders,
        replicated: 0,
        hung_up: false,
        failure: None,
    }));
    let kick = Rc::new(kick);
    let mut client_tasks = Vec::new();
    for (c, (client, answered)) in clients.into_iter().zip(answer_receivers).enumerate() {
        let (state, kick) = (state.clone(), kick.clone());
        let stream = to_glommio(client)?;
        client_tasks.push(glommio::spawn_local(async move {
            if let Err(e) = serve_client(c, stream, request_bytes, &state, &kick, answered).await {
                state.borrow_mut().fail(e);
            }
        }));
    }
    drop(kick); // the replicator's channel closes when the last client task ends
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (f, follower) in followers.into_iter().enumerate() {
        let (mut reader, writer) = futures_lite::io::split(to_glommio(follower)?);
        writers.push(writer);
        let state = state.clone();
        readers.push(glommio::spawn_local(async move {
            let mut ack = [0u8; ACK_BYTES];
            loop {
                if let Err(e) = reader.read_exact(&mut ack).await {
                    let mut s = state.borrow_mut();
                    if !(s.hung_up && e.kind() == std::io::ErrorKind::UnexpectedEof) {
                        s.fail(format!("leader: reading follower {f}: {e}"));
                    }
                    break;
                }
                let mut s = state.borrow_mut();
                s.acks[f] = s.acks[f].max(u64::from_le_bytes(ack) + 1);
                s.answer_ready();
            }
        }));
    }
    // The replicator: every pass's writes as one batch.
    // The last batch's buffer, reused for the one after next.
    let mut spare = Vec::new();
    while kicked.recv().await.is_some() && state.borrow().failure.is_none() {
        let (mut batch, clients) = {
            let mut s = state.borrow_mut();
            if s.batch_clients.is_empty() {
                continue;
            }
            spare.clear();
            spare.extend_from_slice(&[0; 4]);
            (std::mem::replace(&mut s.batch, std::mem::take(&mut spare)), std::mem::take(&mut s.batch_clients))
        };
        batch[..4].copy_from_slice(&(clients.len() as u32).to_le_bytes());
        for writer in &mut writers {
            if let Err(e) = writer.write_all(&batch).await {
                state.borrow_mut().fail(format!("leader: sending: {e}"));
            }
        }
        if let Some(disk) = &mut disk {
            if let Err(e) = disk.write_and_sync() {
                state.borrow_mut().fail(e);
            }
        }
        let mut s = state.borrow_mut();
        let number = s.sent;
        s.sent += 1;
        s.replicated += clients.len() as u64;
        s.unanswered.push_back((number, clients));
        s.answer_ready();
        spare = batch;
    }
    for task in client_tasks {
        task.await;
    }
    // Hang up: each follower sees the end of its input, answers what it
    // had, and closes, which ends its reader here.
    state.borrow_mut().hung_up = true;
    for writer in &mut writers {
        let _ = writer.close().await;
    }
    for task in readers {
        task.await;
    }
    let s = state.borrow();
    match &s.failure {
        Some(e) => Err(e.clone()),
        None if s.acks.iter().any(|a| *a < s.sent) => Err("leader: a follower left before answering".into()),
        None => Ok(s.replicated),
    }
}

/// One client connection until the client hangs up: a read answered at
/// once, a write handed to the replicator and answered once replicated.
async fn serve_client(
    c: usize,
    mut stream: glommio::net::TcpStream,
    request_bytes: usize,
    state: &RefCell<LeaderState>,
    kick: &LocalSender<()>,
    answered: LocalReceiver<()>,
) -> Result<(), String> {
    let mut request = vec![0u8; request_bytes];
    loop {
        match stream.read_exact(&mut request).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("leader: reading client {c}: {e}")),
        }
        if request.get(ACK_BYTES) != Some(&READ) {
            {
                let mut s = state.borrow_mut();
                s.batch.extend_from_slice(&request);
                s.batch_clients.push(c);
            }
            let _ = kick.try_send(()); // full: the replicator is already due to run
            if answered.recv().await.is_none() {
                // Another task failed first (`LeaderState::fail`); its error is the one reported.
                return Err("leader: stopped after an error".into());
            }
        }
        stream.write_all(&request[..ACK_BYTES]).await.map_err(|e| format!("leader: answering client {c}: {e}"))?;
    }
}
