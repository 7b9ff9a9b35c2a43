//! [`Keyspace`]: every key's value, expiry and version, kept in the order of
//! a fixed hash of the key.
//!
//! Why hash order: SCAN hands the client an integer cursor, and a cursor
//! that is a position in a fixed hash space stays meaningful while keys
//! come and go (every key present for the whole iteration is returned, as
//! Redis promises), on every replica and across snapshots, whatever the
//! map's shape. Ordering by `(hash, key)` also makes most comparisons one
//! integer compare instead of a `memcmp`.
//!
//! Time: an entry with `expires_at = Some(t)` is gone at every time `now >
//! t` (Redis's rule: at `now == t` it still exists). The keyspace never
//! reads a clock: callers pass the time the log (or a leader's read)
//! judges at. Expired entries stay in the map until [`Keyspace::reclaim`]
//! removes them; every lookup that takes a time hides them.
//!
//! Two indexes: a hash table from key to entry for point lookups (GET,
//! SET: one probe, not a walk down a tree of 100,000 keys, which took 16%
//! of a leader's time under pipelined GETs), and the ordered set of keys
//! for everything that goes in order (SCAN, snapshots, digests, random
//! keys). Looking a key up computes no fixed hash, and overwriting a key
//! without an expiry touches the table only. The table's hash is aHash,
//! seeded at random per process: with a fixed, unseeded hash a client
//! could choose keys that all land in one probe sequence (Redis seeds its
//! table for the same reason); its order is never seen, so the seed
//! changes no output. std's SipHash-1-3 cost about 200 of the 2,650
//! instructions of applying a SET (`benches/record-kv.sh`).
//!
//! Snapshots copy the keyspace a share at a time ([`Keyspace::begin_copy`],
//! [`Keyspace::copy_step`]) while it keeps changing: every change first
//! leaves the key's earlier entry for the copy if the copy has not reached
//! the key yet, as a fork's pages are copied on write.
//!
//! Invariants:
//! - `order` holds exactly the keys of `entries`;
//! - `expiring` holds exactly `(t, key)` for each entry with `expires_at =
//!   Some(t)`;
//! - iteration order is `(hash(key), key)`, the same on every replica and
//!   every build ([`key_hash`] is fixed, not seeded); the table's own
//!   order is never seen.

use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;

use bytes::Bytes;

/// Bits of a key's hash that a SCAN cursor does not keep: keys whose hashes
/// agree above them form one bucket, which a SCAN step returns whole.
pub const BUCKET_SHIFT: u32 = 8;
/// The largest bucket position (hashes have 64 - [`BUCKET_SHIFT`] bucket bits).
pub const BUCKET_MAX: u64 = u64::MAX >> BUCKET_SHIFT;

/// The fixed 64-bit hash of a key: FNV-1a, then a finalizer that spreads
/// every input bit over the whole word (so buckets fill evenly).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// What a key costs beyond its bytes and its value's, for MEMORY USAGE: its
/// slot in the key table and its place in the key order. An estimate, the
/// same on every replica: the tables' spare room and the allocator's own
/// bookkeeping are left out.
pub const ENTRY_BYTES: usize =
    std::mem::size_of::<MapKey>() + std::mem::size_of::<Entry>() + std::mem::size_of::<HashedKey>();

/// A key with its hash, ordered by `(hash, key)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashedKey {
    hash: u64,
    key: Bytes,
}

impl HashedKey {
    pub fn new(key: Bytes) -> HashedKey {
        HashedKey { hash: key_hash(&key), key }
    }

    /// The smallest key of bucket `bucket` (a bound for range queries).
    fn bucket_start(bucket: u64) -> HashedKey {
        HashedKey { hash: bucket << BUCKET_SHIFT, key: Bytes::new() }
    }

    pub fn key(&self) -> &Bytes {
        &self.key
    }

    pub fn bucket(&self) -> u64 {
        self.hash >> BUCKET_SHIFT
    }
}

/// A key as the table holds it: up to [`INLINE_KEY_BYTES`] bytes inside
/// the table's slot, so that a lookup compares them there, and a longer
/// one on the heap. A key in an allocation of its own cost a cache miss
/// per lookup on a large keyspace: serving a GET took about twice as long
/// in the store (`benches/kv.rs`). Hashes and compares as its bytes, so
/// the table is looked up with a `&[u8]`.
#[derive(Clone)]
enum MapKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY_BYTES] },
    Heap(Box<[u8]>),
}

/// The longest key kept inside the table's slot (the slot's key stays
/// the size of a `Box<[u8]>` and a tag).
const INLINE_KEY_BYTES: usize = 22;

impl MapKey {
    fn new(key: &[u8]) -> MapKey {
        if key.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0; INLINE_KEY_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            MapKey::Inline { len: key.len() as u8, bytes }
        } else {
            MapKey::Heap(key.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            MapKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            MapKey::Heap(bytes) => bytes,
        }
    }
}

impl std::borrow::Borrow<[u8]> for MapKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for MapKey {
    fn eq(&self, other: &MapKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for MapKey {}

impl std::hash::Hash for MapKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, which `Borrow` requires.
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for MapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// One key's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Bytes,
    /// Unix milliseconds after which the key is gone; `None`: never.
    pub expires_at: Option<i64>,
    /// The store's apply index of the last change to this key (its value
    /// or its expiry): WATCH compares it.
    pub version: u64,
}

impl Entry {
    /// Gone at time `now`?
    pub fn expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| now > t)
    }
}

#[derive(Debug, Default)]
pub struct Keyspace {
    /// Every entry, by key.
    entries: HashMap<MapKey, Entry, ahash::RandomState>,
    /// Every key of `entries`, in `(hash, key)` order.
    order: BTreeSet<HashedKey>,
    /// `(expires_at, key)` of every entry with an expiry.
    expiring: BTreeSet<(i64, HashedKey)>,
    /// A copy of every entry as of one moment, taken a share at a time
    /// ([`Keyspace::begin_copy`]). Not part of the state: a clone starts
    /// without one, and equality ignores it.
    copy: Option<Box<KeyCopy>>,
}

/// A clone is the state alone: a copy in progress stays with its keyspace.
impl Clone for Keyspace {
    fn clone(&self) -> Keyspace {
        Keyspace {
            entries: self.entries.clone(),
            order: self.order.clone(),
            expiring: self.expiring.clone(),
            copy: None,
        }
    }
}

impl PartialEq for Keyspace {
    fn eq(&self, other: &Keyspace) -> bool {
        self.entries == other.entries && self.order == other.order && self.expiring == other.expiring
    }
}

impl Eq for Keyspace {}

/// Every entry as it was when [`Keyspace::begin_copy`] was called, copied
/// in key order a share at a time while the keyspace keeps changing.
///
/// Why: a snapshot needs the store as of one slot, and cloning 100,000
/// keys at once held a shard's executor for 10-30 ms (section 30 of
/// `results/README.md`), every client and peer of the shard waiting. Like
/// a fork's copy-on-write pages, a key changed before the copy reached it
/// leaves its earlier entry behind (`before`), which the copy takes
/// instead of the changed one.
///
/// Invariants: every key up to `last` is copied, in `(hash, key)` order;
/// every key in `before` is past `last`, and holds its entry at the start
/// (`None`: absent then).
#[derive(Debug, Default)]
struct KeyCopy {
    last: Option<HashedKey>,
    before: BTreeMap<HashedKey, Option<Entry>>,
    copied: Vec<(HashedKey, Entry)>,
    done: bool,
}

impl KeyCopy {
    /// `key` is about to change, or just changed from `was` (`None`: it
    /// was absent): keep `was` if the copy has not reached the key and
    /// this is its first change since the copy began.
    fn note(&mut self, key: &Bytes, was: Option<&Entry>) {
        if self.done {
            return;
        }
        let hashed = HashedKey::new(key.clone());
        if self.last.as_ref().is_none_or(|last| hashed > *last) {
            self.before.entry(hashed).or_insert_with(|| was.cloned());
        }
    }
}

impl Keyspace {
    /// Every entry, expired or not (snapshots, digests).
    pub fn len_stored(&self) -> usize {
        self.entries.len()
    }

    /// Entries with an expiry (expired or not).
    pub fn len_expiring(&self) -> usize {
        self.expiring.len()
    }

    /// Entries alive at `now`.
    pub fn len_live(&self, now: i64) -> usize {
        self.entries.len() - self.expired_count(now)
    }

    /// Entries whose expiry passed at `now` but that are still stored.
    pub fn expired_count(&self, now: i64) -> usize {
        self.expiring.iter().take_while(|(t, _)| now > *t).count()
    }

    /// The earliest expiry of any stored entry.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiring.first().map(|(t, _)| *t)
    }

    /// The entry of `key` if it is alive at `now`.
    pub fn live(&self, key: &Bytes, now: i64) -> Option<&Entry> {
        self.entries.get(key.as_ref()).filter(|entry| !entry.expired_at(now))
    }

    /// Looks `keys` up one after another, so that their cache misses
    /// overlap, and leaves their entries in the cache (see
    /// [`super::store::KvStore::warm`]).
    pub fn warm<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) {
        let mut found = 0usize;
        for key in keys {
            if let Some(entry) = self.entries.get(key) {
                found = found.wrapping_add(entry.value.first().map_or(0, |&b| usize::from(b)));
            }
        }
        std::hint::black_box(found);
    }

    /// Set `key`'s entry, replacing any (expired or not).
    pub fn put(&mut self, key: Bytes, entry: Entry) {
        let expires_at = entry.expires_at;
        // One probe. The table keeps its own copy of the key (`MapKey`);
        // `key` goes to the ordered index if it is new, else is dropped.
        let (existed, stale) = match self.entries.entry(MapKey::new(&key)) {
            hash_map::Entry::Occupied(mut slot) => {
                let old = slot.insert(entry);
                if let Some(copy) = self.copy.as_deref_mut() {
                    copy.note(&key, Some(&old));
                }
                let stale = old.expires_at.filter(|t| Some(*t) != expires_at);
                if stale.is_none() && expires_at.is_none() {
                    return;
                }
                (true, stale)
            }
            hash_map::Entry::Vacant(slot) => {
                slot.insert(entry);
                if let Some(copy) = self.copy.as_deref_mut() {
                    copy.note(&key, None);
                }
                (false, None)
            }
        };
        let hashed = HashedKey::new(key);
        if let Some(t) = stale {
            self.expiring.remove(&(t, hashed.clone()));
        }
        if let Some(t) = expires_at {
            self.expiring.insert((t, hashed.clone()));
        }
        if !existed {
            self.order.insert(hashed);
        }
    }

    /// Remove `key`'s entry (expired or not); returns it.
    pub fn remove(&mut self, key: &Bytes) -> Option<Entry> {
        let old = self.entries.remove(key.as_ref())?;
        if let Some(copy) = self.copy.as_deref_mut() {
            copy.note(key, Some(&old));
        }
        let hashed = HashedKey::new(key.clone());
        if let Some(t) = old.expires_at {
            self.expiring.remove(&(t, hashed.clone()));
        }
        self.order.remove(&hashed);
        Some(old)
    }

    /// Remove up to `max` entries expired at `now`, earliest first; returns
    /// how many.
    pub fn reclaim(&mut self, now: i64, max: usize) -> usize {
        let mut removed = 0;
        while removed < max {
            let Some((t, _)) = self.expiring.first() else { break };
            if now <= *t {
                break;
            }
            let (_, hashed) = self.expiring.pop_first().expect("checked above");
            let old = self.entries.remove(hashed.key.as_ref());
            if let Some(copy) = self.copy.as_deref_mut() {
                copy.note(&hashed.key, old.as_ref());
            }
            self.order.remove(&hashed);
            removed += 1;
        }
        removed
    }

    /// Remove everything. A copy in progress is finished first (it would
    /// otherwise keep every entry's earlier state one by one).
    pub fn clear(&mut self) {
        self.copy_step(usize::MAX);
        self.entries.clear();
        self.order.clear();
        self.expiring.clear();
    }

    /// The entry of a key from `order` (every one has one).
    fn entry_of(&self, hashed: &HashedKey) -> &Entry {
        self.entries.get(hashed.key.as_ref()).expect("every ordered key has an entry")
    }

    /// `keys` (taken from `order`) with their entries.
    fn ordered<'a>(
        &'a self,
        keys: impl Iterator<Item = &'a HashedKey> + Clone + 'a,
    ) -> impl Iterator<Item = (&'a HashedKey, &'a Entry)> + Clone + 'a {
        keys.map(move |hashed| (hashed, self.entry_of(hashed)))
    }

    /// Every stored entry in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&HashedKey, &Entry)> + Clone {
        self.ordered(self.order.iter())
    }

    /// Entries alive at `now`, in hash order.
    pub fn iter_live(&self, now: i64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.iter().filter(move |(_, entry)| !entry.expired_at(now)).map(|(hashed, entry)| (&hashed.key, entry))
    }

    /// One SCAN step from bucket `from`: live keys in hash order until at
    /// least `count` were visited, then the rest of the last one's bucket.
    /// Returns the keys and the bucket to continue from (`None`: done).
    pub fn scan(&self, from: u64, count: usize, now: i64) -> (Vec<(&Bytes, &Entry)>, Option<u64>) {
        let mut found = Vec::new();
        let mut last_bucket = None;
        for (hashed, entry) in self.ordered(self.order.range(HashedKey::bucket_start(from)..)) {
            if let Some(bucket) = last_bucket {
                if found.len() >= count && hashed.bucket() != bucket {
                    return (found, Some(hashed.bucket()));
                }
            }
            last_bucket = Some(hashed.bucket());
            if !entry.expired_at(now) {
                found.push((&hashed.key, entry));
            }
        }
        (found, None)
    }

    /// The first live key at or after hash position `point`, wrapping
    /// around; `None` if no key is alive. Looks at most `tries` expired
    /// entries past.
    pub fn first_live_from(&self, point: u64, now: i64, tries: usize) -> Option<&Bytes> {
        let start = HashedKey { hash: point, key: Bytes::new() };
        self.ordered(self.order.range(start.clone()..).chain(self.order.range(..start)))
            .take(tries.max(1))
            .find(|(_, entry)| !entry.expired_at(now))
            .map(|(hashed, _)| &hashed.key)
    }

    /// Start copying every entry as it is now (see [`KeyCopy`]), replacing a
    /// copy in progress. [`Keyspace::copy_step`] takes it a share at a time.
    pub fn begin_copy(&mut self) {
        let copied = Vec::with_capacity(self.entries.len());
        self.copy = Some(Box::new(KeyCopy { copied, ..KeyCopy::default() }));
    }

    /// A copy was begun and not yet taken (the node keeps its own record:
    /// tests ask here).
    #[cfg(test)]
    pub fn copying(&self) -> bool {
        self.copy.is_some()
    }

    /// Copy up to `keys` more entries (keys that were present when the
    /// copy began, in order); true once every one is copied (or no copy
    /// is in progress). One walk of the key order per call: each share
    /// costs a lookup of where it starts, not one per key.
    pub fn copy_step(&mut self, keys: usize) -> bool {
        let Keyspace { entries, order, copy, .. } = self;
        let Some(copy) = copy.as_deref_mut() else { return true };
        if copy.done {
            return true;
        }
        let from = copy.last.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut now = order.range::<HashedKey, _>((from, Bound::Unbounded)).peekable();
        let mut last = None;
        for _ in 0..keys {
            let changed = copy.before.first_key_value().map(|(key, _)| key);
            let take_before = match (now.peek(), changed) {
                (None, None) => {
                    copy.done = true;
                    break;
                }
                (Some(present), Some(changed)) => changed <= *present,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if take_before {
                let (key, was) = copy.before.pop_first().expect("peeked above");
                if now.peek().is_some_and(|present| **present == key) {
                    now.next();
                }
                if let Some(entry) = was {
                    copy.copied.push((key.clone(), entry));
                }
                last = Some(key);
            } else {
                let key = now.next().expect("peeked above");
                let entry = entries.get(key.key.as_ref()).expect("every ordered key has an entry");
                copy.copied.push((key.clone(), entry.clone()));
                last = Some(key.clone());
            }
        }
        if now.peek().is_none() && copy.before.is_empty() {
            copy.done = true;
        }
        if let Some(last) = last {
            copy.last = Some(last);
        }
        copy.done
    }

    /// The finished copy's entries in `(hash, key)` order, once
    /// [`Keyspace::copy_step`] said it is done; the copy ends.
    pub fn take_copy(&mut self) -> Option<Vec<(HashedKey, Entry)>> {
        if !self.copy.as_ref().is_some_and(|copy| copy.done) {
            return None;
        }
        self.copy.take().map(|copy| copy.copied)
    }

    /// Checks the invariants between the entries, the key order and the
    /// expiry index.
    pub fn check_invariants(&self) {
        // Unit tests run in release builds too (`.ci/run`): they check them.
        if cfg!(any(debug_assertions, test)) {
            assert_eq!(self.order.len(), self.entries.len(), "the key order lists every entry");
            assert!(
                self.order.iter().all(|k| self.entries.contains_key(k.key.as_ref())),
                "every ordered key has an entry"
            );
            let expected: BTreeSet<(i64, HashedKey)> =
                self.iter().filter_map(|(k, e)| e.expires_at.map(|t| (t, k.clone()))).collect();
            assert_eq!(expected, self.expiring, "the expiry index matches the entries");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn entry(value: &str, expires_at: Option<i64>) -> Entry {
        Entry { value: b(value), expires_at, version: 1 }
    }

    #[test]
    fn the_hash_is_fixed() {
        // A changed hash would reorder every snapshot: pin a few values.
        let hashes = [key_hash(b""), key_hash(b"key:1"), key_hash(&[0xff; 40]), key_hash(b"paxoskv")];
        let pinned = [0xefd0_1f60_ba99_2926, 0x38df_317a_c31d_6270, 0x86b0_d5ee_79bb_15b1, 0x27c1_3ed5_8920_7c89];
        assert_eq!(hashes, pinned, "the hash function changed");
    }

    /// The table's own hash, unlike the order's, is seeded: with a fixed
    /// one a client could choose keys that all land in one probe sequence.
    #[test]
    fn the_tables_hash_is_seeded() {
        use std::hash::BuildHasher;
        let (a, b) = (Keyspace::default(), Keyspace::default());
        let key: &[u8] = b"key:000000012345";
        assert_ne!(a.entries.hasher().hash_one(key), b.entries.hasher().hash_one(key), "two tables, one seed");
    }

    #[test]
    fn expired_entries_are_hidden_then_reclaimed_earliest_first() {
        let mut keys = Keyspace::default();
        keys.put(b("a"), entry("1", Some(100)));
        keys.put(b("b"), entry("2", Some(50)));
        keys.put(b("c"), entry("3", None));
        assert!(keys.live(&b("a"), 100).is_some(), "alive at its expiry time");
        assert!(keys.live(&b("a"), 101).is_none());
        assert_eq!(keys.len_live(101), 1);
        assert_eq!(keys.next_expiry(), Some(50));
        assert_eq!(keys.reclaim(101, 1), 1);
        assert_eq!(keys.len_stored(), 2);
        assert!(keys.entries.contains_key(&b"a"[..]), "b expired first and went first");
        assert_eq!(keys.reclaim(101, 10), 1);
        assert_eq!(keys.len_stored(), 1);
        keys.check_invariants();
    }

    #[test]
    fn keys_inside_the_table_and_on_the_heap_behave_alike() {
        let lengths = [0, 1, INLINE_KEY_BYTES - 1, INLINE_KEY_BYTES, INLINE_KEY_BYTES + 1, 100];
        let key = |n: usize, c: u8| Bytes::from(vec![c; n]);
        let mut keys = Keyspace::default();
        for (i, &n) in lengths.iter().enumerate() {
            keys.put(key(n, b'k'), entry(&i.to_string(), None));
            keys.put(key(n, b'k'), entry(&format!("{i}'"), Some(10)));
        }
        keys.check_invariants();
        assert_eq!(keys.len_stored(), lengths.len());
        for (i, &n) in lengths.iter().enumerate() {
            assert_eq!(keys.live(&key(n, b'k'), 0).map(|e| e.value.clone()), Some(b(&format!("{i}'"))), "{n}");
            assert!(keys.live(&key(n, b'j'), 0).is_none() || n == 0, "{n}");
        }
        // A key one byte longer or shorter than a stored one is another key.
        assert!(keys.live(&key(INLINE_KEY_BYTES + 2, b'k'), 0).is_none());
        for &n in &lengths {
            assert!(keys.remove(&key(n, b'k')).is_some(), "{n}");
        }
        keys.check_invariants();
        assert_eq!(keys.len_stored(), 0);
        assert_eq!(format!("{:?}", MapKey::new(b"ab")), format!("{:?}", Bytes::from_static(b"ab")));
    }

    #[test]
    fn replacing_an_entry_keeps_the_expiry_index_exact() {
        let mut keys = Keyspace::default();
        keys.put(b("a"), entry("1", Some(100)));
        keys.put(b("a"), entry("2", Some(200)));
        keys.check_invariants();
        keys.put(b("a"), entry("3", Some(200)));
        keys.check_invariants();
        keys.put(b("a"), entry("4", None));
        keys.check_invariants();
        assert_eq!(keys.len_expiring(), 0);
        keys.remove(&b("a"));
        assert_eq!(keys.len_stored(), 0);
    }

    #[test]
    fn a_full_scan_returns_every_live_key_once() {
        let mut keys = Keyspace::default();
        for i in 0..1000 {
            let expires = if i % 10 == 0 { Some(5) } else { None };
            keys.put(b(&format!("k{i}")), entry("v", expires));
        }
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (found, next) = keys.scan(cursor, 7, 10);
            seen.extend(found.into_iter().map(|(k, _)| k.clone()));
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let unique: BTreeSet<Bytes> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 900);
        assert_eq!(unique.len(), 900);
    }

    #[test]
    fn random_keys_wrap_around_and_skip_expired() {
        let mut keys = Keyspace::default();
        assert_eq!(keys.first_live_from(0, 0, 10), None);
        keys.put(b("x"), entry("1", None));
        keys.put(b("gone"), entry("1", Some(0)));
        assert_eq!(keys.first_live_from(u64::MAX, 5, 10), Some(&b("x")));
        assert_eq!(keys.first_live_from(0, 5, 10), Some(&b("x")));
    }
}
