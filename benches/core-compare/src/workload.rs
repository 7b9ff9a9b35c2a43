//! The commands every harness proposes, and the digest that proves each
//! replica applied them all, in order.

use std::sync::OnceLock;

use bytes::Bytes;

/// Every command is this many bytes.
pub const COMMAND_BYTES: usize = 16;

/// Distinct commands in the pool; the sequence repeats after this many.
const POOL_COMMANDS: usize = 4096;

/// An order-sensitive fingerprint of a command sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    pub commands: u64,
    pub hash: u64,
}

impl Digest {
    /// Every replica calls this for every command it applies, so it must
    /// cost little next to the libraries: a command's words are folded
    /// (rotated by position) into one word, and only that word goes through
    /// the multiplying mix that chains commands in order.
    pub fn add(&mut self, command: &[u8]) {
        let mut folded = command.len() as u64;
        let mut words = command.chunks_exact(8);
        for (index, word) in (&mut words).enumerate() {
            folded ^= u64::from_le_bytes(word.try_into().expect("8 bytes")).rotate_left(17 * index as u32 + 1);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            folded ^= u64::from_le_bytes(word).rotate_left(11);
        }
        let hash = (self.hash.rotate_left(23) ^ folded).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.hash = hash;
        self.commands += 1;
    }

    /// Every command of a batch, in order, on a copy that stays in
    /// registers and is stored once. Every group applies through this (or
    /// `apply_encoded_batch`, which does the same), so that they all pay
    /// the same for it: a loop that updates the digest in place, inside
    /// `self.applied[index]`, may store and reload it for every command,
    /// and whether the compiler did depended on how each group's loop was
    /// written (paxoskv's paid that chain of stores; its drain took about
    /// 3 ns per command more at 16 x 64 for the same instructions).
    pub fn add_batch(&mut self, commands: &[Bytes]) {
        let mut digest = *self;
        for command in commands {
            digest.add(command);
        }
        *self = digest;
    }
}

/// The proposer's side: hands out commands and remembers what it handed out.
pub struct Commands {
    pool: Bytes,
    next: usize,
    proposed: Digest,
}

impl Default for Commands {
    fn default() -> Self {
        Self::new()
    }
}

/// The command pool, built once and never freed: every command is a
/// `Bytes` slice of static memory, so cloning and dropping one touches no
/// reference count. A shell's commands would be slices of a shared read
/// buffer, whose atomic count each clone and drop pays; here that cost,
/// the same for every library, would only blur the differences (it was
/// a quarter of OmniPaxos's profile at 64 commands per entry).
fn pool() -> Bytes {
    static POOL: OnceLock<&'static [u8]> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let mut pool = Vec::with_capacity(POOL_COMMANDS * COMMAND_BYTES);
        for k in 0..POOL_COMMANDS as u64 {
            pool.extend_from_slice(&k.to_le_bytes());
            pool.extend_from_slice(&k.wrapping_mul(0xff51_afd7_ed55_8ccd).to_le_bytes());
        }
        Vec::leak(pool)
    });
    Bytes::from_static(pool)
}

impl Commands {
    pub fn new() -> Commands {
        Commands { pool: pool(), next: 0, proposed: Digest::default() }
    }

    /// The next command: a slice of the static pool (no copy, no count).
    pub fn next_command(&mut self) -> Bytes {
        let at = (self.next % POOL_COMMANDS) * COMMAND_BYTES;
        self.next += 1;
        let command = self.pool.slice(at..at + COMMAND_BYTES);
        self.proposed.add(&command);
        command
    }

    /// The next `count` commands. A plain loop, not `collect`: in a flat
    /// profile, `Vec::from_iter` is then the library's, not the harness's.
    pub fn next_batch(&mut self, count: usize) -> Vec<Bytes> {
        let mut batch = Vec::with_capacity(count);
        for _ in 0..count {
            batch.push(self.next_command());
        }
        batch
    }

    pub fn proposed(&self) -> Digest {
        self.proposed
    }
}

/// raft-rs entries are bytes: a batch travels as each command behind its
/// 4-byte little-endian length.
pub fn encode_batch(commands: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(commands.iter().map(|c| 4 + c.len()).sum());
    for command in commands {
        out.extend_from_slice(&(command.len() as u32).to_le_bytes());
        out.extend_from_slice(command);
    }
    out
}

/// Fold every command of an [`encode_batch`] encoding into `digest`.
pub fn apply_encoded_batch(mut data: &[u8], applied: &mut Digest) {
    // On a copy, as `Digest::add_batch` does.
    let mut digest = *applied;
    while !data.is_empty() {
        let (len, rest) = data.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let (command, rest) = rest.split_at(len);
        digest.add(command);
        data = rest;
    }
    *applied = digest;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_sees_order_and_count() {
        let mut commands = Commands::new();
        let batch = commands.next_batch(3);
        let (mut forward, mut backward) = (Digest::default(), Digest::default());
        batch.iter().for_each(|c| forward.add(c));
        batch.iter().rev().for_each(|c| backward.add(c));
        assert_eq!(forward, commands.proposed());
        assert_ne!(forward, backward);
        forward.add(&batch[0]);
        assert_ne!(forward, commands.proposed());
    }

    #[test]
    fn digest_covers_a_partial_last_word() {
        let (mut a, mut b) = (Digest::default(), Digest::default());
        a.add(b"0123456789");
        b.add(b"0123456788");
        assert_ne!(a, b);
    }

    #[test]
    fn encoded_batch_round_trips() {
        let mut commands = Commands::new();
        let batch = commands.next_batch(5);
        let mut digest = Digest::default();
        apply_encoded_batch(&encode_batch(&batch), &mut digest);
        assert_eq!(digest, commands.proposed());
    }
}
