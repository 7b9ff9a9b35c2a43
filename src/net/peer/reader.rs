//! A bounds-checked cursor over untrusted bytes, shared by the handshake
//! and the frame body decoders.

use super::*;

/// A cursor over untrusted bytes; every read checks what remains.
///
/// Invariant: `at <= input.len()`.
pub(super) struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input, at: 0 }
    }

    /// How far into the input the cursor is.
    pub(super) fn at(&self) -> usize {
        self.at
    }

    pub(super) fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    /// The range of the next `needed` bytes, which are consumed.
    pub(super) fn span(&mut self, what: &'static str, needed: usize) -> Result<Range<usize>, PeerDecodeError> {
        let remaining = self.remaining();
        if needed > remaining {
            return Err(PeerDecodeError::Truncated { what, needed, remaining });
        }
        let start = self.at;
        self.at += needed;
        Ok(start..self.at)
    }

    pub(super) fn take(&mut self, what: &'static str, needed: usize) -> Result<&'a [u8], PeerDecodeError> {
        let span = self.span(what, needed)?;
        Ok(&self.input[span])
    }

    pub(super) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PeerDecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(what, N)?);
        Ok(array)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, PeerDecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, PeerDecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, PeerDecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, PeerDecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(super) fn bool(&mut self, what: &'static str) -> Result<bool, PeerDecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(PeerDecodeError::InvalidBool { what, byte }),
        }
    }

    pub(super) fn ballot(&mut self) -> Result<Ballot, PeerDecodeError> {
        let round = self.u64("ballot round")?;
        let node = self.u32("ballot node")?;
        Ok(Ballot { round, node })
    }

    /// The count of a list whose items take at least `item_bytes_min` (> 0)
    /// bytes each, checked against the remaining input so that callers may
    /// reserve `count` items.
    pub(super) fn count(&mut self, what: &'static str, item_bytes_min: usize) -> Result<usize, PeerDecodeError> {
        let count = self.u32(what)?;
        let remaining = self.remaining();
        if count as usize > remaining / item_bytes_min {
            return Err(PeerDecodeError::CountTooLarge { what, count, remaining });
        }
        Ok(count as usize)
    }

    /// A `len: u32 | bytes` string; returns the bytes' range.
    pub(super) fn data_span(&mut self, what: &'static str) -> Result<Range<usize>, PeerDecodeError> {
        let len = self.u32(what)? as usize;
        self.span(what, len)
    }

    /// A `len: u16 | UTF-8` string of at most `max` bytes.
    pub(super) fn string(&mut self, what: &'static str, max: usize) -> Result<String, PeerDecodeError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(PeerDecodeError::TooLong { what, len, max });
        }
        let raw = self.take(what, len)?;
        let text = std::str::from_utf8(raw).map_err(|_| PeerDecodeError::InvalidUtf8 { what })?;
        Ok(text.to_owned())
    }

    pub(super) fn magic(&mut self) -> Result<(), PeerDecodeError> {
        let found = self.array::<4>("magic")?;
        if found != MAGIC {
            return Err(PeerDecodeError::BadMagic { found });
        }
        Ok(())
    }

    /// Ends decoding of `what`: any unread byte is an error.
    pub(super) fn finish(self, what: &'static str) -> Result<(), PeerDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(PeerDecodeError::TrailingBytes { what, count }),
        }
    }
}
