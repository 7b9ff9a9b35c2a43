//! The node's client registry: every open client connection, across all
//! executors, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients` and
//! `clients_max`.
//!
//! A connection registers when it opens and deregisters before its socket
//! closes. `CLIENT KILL` shuts the socket down (`shutdown(2)`, from any
//! thread) while holding the registry's lock, so it can never hit a file
//! descriptor that was closed and reused: closing waits for the lock.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::util;
use crate::net::commands::{self, CommandSpec, COMMANDS};
use crate::net::request::KillFilter;

/// One connection's state as others may see it.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: RawFd,
    pub created_ms: u64,
    pub last_ms: AtomicU64,
    pub name: Mutex<Option<Bytes>>,
    /// Index into `COMMANDS` of the last command (`u8::MAX`: none yet).
    pub last_command: AtomicU8,
    /// Index into the last command's `subcommands` of its subcommand
    /// (`u8::MAX`: none).
    pub last_subcommand: AtomicU8,
    /// 2 or 3.
    pub proto: AtomicU8,
    /// Commands queued in MULTI, or -1 outside one.
    pub multi: AtomicI64,
    pub watching: AtomicU64,
    pub killed: AtomicBool,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, fd: RawFd) -> ClientInfo {
        let now = util::unix_millis() as u64;
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created_ms: now,
            last_ms: AtomicU64::new(now),
            name: Mutex::new(None),
            last_command: AtomicU8::new(u8::MAX),
            last_subcommand: AtomicU8::new(u8::MAX),
            proto: AtomicU8::new(2),
            multi: AtomicI64::new(-1),
            watching: AtomicU64::new(0),
            killed: AtomicBool::new(false),
        }
    }

    /// Bytes came from the client at `unix_ms`: `CLIENT LIST`'s `idle`
    /// counts from the latest read, as Redis's `lastinteraction` does (one
    /// clock read per read from the socket, not one per command).
    pub fn read_at(&self, unix_ms: u64) {
        self.last_ms.store(unix_ms, Relaxed);
    }

    /// The client's latest command: `name` from the table, or `container|sub`
    /// from its subcommands (`commands::full_name`).
    pub fn touch(&self, full_name: &str) {
        let name = full_name.split('|').next().unwrap_or(full_name);
        let Some(index) = commands::command_index(name.as_bytes()) else { return };
        let sub = COMMANDS[index].subcommands.iter().find(|sub| sub.name == full_name);
        self.touch_command(index, sub);
    }

    /// [`ClientInfo::touch`] for a command already looked up: `COMMANDS[index]`,
    /// and `sub`, one of its subcommands. Reads no clock: the connection
    /// stamps its reads ([`ClientInfo::read_at`]).
    pub fn touch_command(&self, index: usize, sub: Option<&CommandSpec>) {
        self.last_command.store(index as u8, Relaxed);
        let sub = sub.and_then(|sub| COMMANDS[index].subcommands.iter().position(|s| s.name == sub.name));
        self.last_subcommand.store(sub.map_or(u8::MAX, |i| i as u8), Relaxed);
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line (Redis 7.0's fields, with the
    /// memory figures this server does not track as 0).
    pub fn line(&self) -> String {
        let now = util::unix_millis() as u64;
        let name = self.name.lock().expect("not poisoned").clone().unwrap_or_default();
        let cmd = match COMMANDS.get(self.last_command.load(Relaxed) as usize) {
            Some(spec) => spec.subcommands.get(self.last_subcommand.load(Relaxed) as usize).unwrap_or(spec).name,
            None => "NULL",
        };
        let multi = self.multi.load(Relaxed);
        let flags = if multi >= 0 { "x" } else { "N" };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db=0 sub=0 psub=0 ssub=0 multi={multi} \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} \
             user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&name),
            now.saturating_sub(self.created_ms) / 1000,
            now.saturating_sub(self.last_ms.load(Relaxed)) / 1000,
            self.proto.load(Relaxed),
        )
    }
}

#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Commands received since start.
    pub total_commands: AtomicU64,
}

impl ClientRegistry {
    pub fn register(&self, info: ClientInfo) -> Arc<ClientInfo> {
        let info = Arc::new(info);
        self.clients.lock().expect("not poisoned").insert(info.id, info.clone());
        self.total_connections.fetch_add(1, Relaxed);
        info
    }

    /// Forget `id`; call before its socket closes.
    pub fn deregister(&self, id: u64) {
        self.clients.lock().expect("not poisoned").remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().expect("not poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `CLIENT LIST` text: every connection (or those in `ids`), one line each.
    pub fn list(&self, ids: Option<&[u64]>) -> String {
        let clients = self.clients.lock().expect("not poisoned");
        let mut out = String::new();
        for info in clients.values().filter(|info| ids.is_none_or(|ids| ids.contains(&info.id))) {
            out.push_str(&info.line());
            out.push('\n');
        }
        out
    }

    /// Close every connection `filter` matches (not `caller` unless the
    /// filter includes it); returns how many. The caller itself is only
    /// marked `killed`: it answers first and then closes, as Redis closes a
    /// client that killed itself after the reply.
    pub fn kill(&self, filter: &KillFilter, caller: u64) -> usize {
        let clients = self.clients.lock().expect("not poisoned");
        let mut killed = 0;
        for info in clients.values() {
            let matches = filter.id.is_none_or(|id| id == info.id)
                && filter.addr.as_ref().is_none_or(|addr| *addr == info.addr)
                && filter.laddr.as_ref().is_none_or(|laddr| *laddr == info.laddr)
                && (filter.include_self || info.id != caller);
            if matches && !info.killed.swap(true, Relaxed) {
                if info.id != caller {
                    // Safe: the connection deregisters under this lock before its fd closes.
                    unsafe {
                        libc::shutdown(info.fd, libc::SHUT_RDWR);
                    }
                }
                killed += 1;
            }
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_connection_that_kills_itself_is_marked_but_left_open_to_answer() {
        let registry = ClientRegistry::default();
        let (caller_end, mut caller_peer) = UnixStream::pair().unwrap();
        let (other_end, mut other_peer) = UnixStream::pair().unwrap();
        let info = |id, fd| ClientInfo::new(id, format!("a:{id}"), "l:1".into(), fd);
        let caller = registry.register(info(1, caller_end.as_raw_fd()));
        let other = registry.register(info(2, other_end.as_raw_fd()));
        let everyone = KillFilter { include_self: true, ..KillFilter::default() };
        assert_eq!(registry.kill(&everyone, 1), 2);
        assert!(caller.killed.load(Relaxed) && other.killed.load(Relaxed));
        // The other connection's socket is shut down: its peer reads EOF.
        assert_eq!(other_peer.read(&mut [0u8; 1]).unwrap(), 0);
        // The caller's is still open, for its reply.
        caller_peer.set_nonblocking(true).unwrap();
        assert_eq!(caller_peer.read(&mut [0u8; 1]).unwrap_err().kind(), ErrorKind::WouldBlock);
        // Killed once: a second KILL counts neither.
        assert_eq!(registry.kill(&everyone, 1), 0);
    }

    #[test]
    fn the_cmd_field_names_the_subcommand() {
        let info = ClientInfo::new(1, "a:1".into(), "l:1".into(), -1);
        assert!(info.line().contains(" cmd=NULL "));
        info.touch("client|info");
        assert!(info.line().contains(" cmd=client|info "), "{}", info.line());
        info.touch("get");
        assert!(info.line().contains(" cmd=get "), "{}", info.line());
    }
}
