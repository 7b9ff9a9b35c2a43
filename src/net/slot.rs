//! Redis Cluster hash slots: which of the [`SLOTS`] slots a key belongs to,
//! and which shard owns a slot.
//!
//! The slot is CRC16-XMODEM of the key modulo 16384, exactly as Redis
//! Cluster computes it (cluster spec, "Keys distribution model"), so keys
//! that clients group with a hash tag (`{user1000}.following`,
//! `{user1000}.followers`) land on the same shard here too.

/// The number of hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection, no
/// final xor), as Redis's `crc16.c`, one table entry per byte value.
const CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &byte| (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)])
}

/// The part of `key` that is hashed: the hash tag, i.e. the bytes between
/// the first `{` and the first `}` after it, when that is non-empty;
/// otherwise the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&byte| byte == b'{') else {
        return key;
    };
    let after_open = &key[open + 1..];
    match after_open.iter().position(|&byte| byte == b'}') {
        Some(close) if close > 0 => &after_open[..close],
        _ => key,
    }
}

/// The hash slot of `key`, in `0..SLOTS`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// The shard, in `0..shards`, that owns `slot` when the slots are split
/// into `shards` contiguous, near-equal ranges.
pub fn slot_shard(slot: u16, shards: usize) -> usize {
    assert!(shards > 0, "slot_shard: no shards");
    assert!(slot < SLOTS, "slot_shard: slot {slot} out of range");
    usize::from(slot) * shards / usize::from(SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn key_slot_matches_redis() {
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_group_keys() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"x{bar}y{zap}"), key_slot(b"bar"), "the first tag counts");
    }

    #[test]
    fn empty_or_unclosed_hash_tags_hash_the_whole_key() {
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(key_slot(b"{}"), crc16(b"{}") % SLOTS);
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"foo}bar{"), b"foo}bar{");
    }

    #[test]
    fn the_tag_ends_at_the_first_close_brace() {
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn slot_shard_splits_into_contiguous_ranges() {
        assert_eq!(slot_shard(0, 1), 0);
        assert_eq!(slot_shard(SLOTS - 1, 1), 0);
        for shards in 1..=7 {
            let owners: Vec<usize> = (0..SLOTS).map(|slot| slot_shard(slot, shards)).collect();
            assert_eq!(owners[0], 0);
            assert_eq!(*owners.last().unwrap(), shards - 1);
            assert!(owners.windows(2).all(|pair| pair[1] == pair[0] || pair[1] == pair[0] + 1), "{shards} shards");
            for shard in 0..shards {
                let size = owners.iter().filter(|&&owner| owner == shard).count();
                let ideal = usize::from(SLOTS) / shards;
                assert!(size == ideal || size == ideal + 1, "{shards} shards: shard {shard} owns {size}");
            }
        }
        assert_eq!(slot_shard(8191, 2), 0);
        assert_eq!(slot_shard(8192, 2), 1);
    }

    #[test]
    #[should_panic(expected = "no shards")]
    fn slot_shard_rejects_zero_shards() {
        slot_shard(0, 0);
    }
}
