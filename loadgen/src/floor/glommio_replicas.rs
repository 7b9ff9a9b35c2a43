//! `--runtime glommio`: a single client's messages with each replica on a
//! glommio executor, as paxoskv's nodes run (the disk writes, if any,
//! stay blocking).

use std::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::disk::Disk;
use super::ACK_BYTES;

/// Run `task` on a glommio executor made on this thread (unbound, like a
/// local paxoskv cluster's), until it ends.
pub(super) fn on_glommio<F, T>(name: &str, task: F) -> Result<(), String>
where
    F: FnOnce() -> T,
    T: std::future::Future<Output = Result<(), String>>,
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

/// A follower on glommio, for one client: each request is its own
/// message, answered with its op number.
pub(super) async fn glommio_follower(
    stream: TcpStream,
    mut disk: Option<Disk>,
    request_bytes: usize,
    total: u64,
) -> Result<(), String> {
    let mut stream = to_glommio(stream)?;
    let mut request = vec![0u8; request_bytes];
    for _ in 0..total {
        stream.read_exact(&mut request).await.map_err(|e| format!("follower: reading: {e}"))?;
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        stream.write_all(&request[..ACK_BYTES]).await.map_err(|e| format!("follower: answering: {e}"))?;
    }
    Ok(())
}

/// A leader on glommio for one client, one request per message: a task per follower reads its answers and
/// passes them on through a channel, as a node's peer readers hand frames
/// to its driver.
pub(super) async fn glommio_leader(
    client: TcpStream,
    followers: Vec<TcpStream>,
    mut disk: Option<Disk>,
    request_bytes: usize,
    total: u64,
) -> Result<(), String> {
    let needed = followers.len() / 2;
    let mut client = to_glommio(client)?;
    let (answers, answered) = glommio::channels::local_channel::new_unbounded::<usize>();
    // The channel closes when the last reader task lets go of it.
    let answers = std::rc::Rc::new(answers);
    let mut writers = Vec::new();
    for (i, follower) in followers.into_iter().enumerate() {
        let (mut reader, writer) = futures_lite::io::split(to_glommio(follower)?);
        writers.push(writer);
        let answers = answers.clone();
        glommio::spawn_local(async move {
            let mut ack = [0u8; ACK_BYTES];
            for _ in 0..total {
                if reader.read_exact(&mut ack).await.is_err() || answers.send(i).await.is_err() {
                    break; // the leader sees the channel close short of its answers
                }
            }
        })
        .detach();
    }
    drop(answers);
    let mut request = vec![0u8; request_bytes];
    let mut acks = vec![0u64; writers.len()];
    for served in 0..total {
        client.read_exact(&mut request).await.map_err(|e| format!("leader: reading the client: {e}"))?;
        for writer in &mut writers {
            writer.write_all(&request).await.map_err(|e| format!("leader: sending: {e}"))?;
        }
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        while acks.iter().filter(|a| **a > served).count() < needed {
            acks[answered.recv().await.ok_or("leader: a follower's connection closed")?] += 1;
        }
        client.write_all(&request[..ACK_BYTES]).await.map_err(|e| format!("leader: answering: {e}"))?;
    }
    while acks.iter().any(|a| *a < total) {
        acks[answered.recv().await.ok_or("leader: a follower's connection closed")?] += 1;
    }
    Ok(())
}
