//! [`Input`]: the fuzzer's bytes read as a sequence of small decisions.
//!
//! A hand decoder rather than the `arbitrary` crate, so the library gains no
//! dependency for its fuzz targets. Every read succeeds: once the bytes run
//! out, reads return zeros (the smallest choice), so any input, the empty
//! one included, drives a target to its end.

/// A cursor over fuzz input; reads past the end yield zeros.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&byte, rest)) => {
                self.bytes = rest;
                byte
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number in `0..bound` (`bound` > 0) from one byte, or two when
    /// `bound` exceeds 256: small choices cost the fuzzer little input.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "Input::below(0)");
        if bound <= 256 {
            usize::from(self.u8()) % bound
        } else {
            usize::from(self.u16()) % bound
        }
    }

    /// Up to `len_max` (<= 255) bytes, their count read first.
    pub fn bytes(&mut self, len_max: usize) -> &'a [u8] {
        let len = self.below(len_max + 1).min(self.bytes.len());
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_zero() {
        let mut input = Input::new(&[7, 1, 2]);
        assert_eq!(input.u8(), 7);
        assert_eq!(input.u16(), 0x0201);
        assert!(input.is_empty());
        assert_eq!((input.u8(), input.u32(), input.u64(), input.bool()), (0, 0, 0, false));
        assert_eq!(input.below(10), 0);
        assert_eq!(input.bytes(10), b"");
    }

    #[test]
    fn bytes_take_at_most_what_is_left() {
        let mut input = Input::new(&[5, b'a', b'b']);
        assert_eq!(input.bytes(10), b"ab");
        let mut input = Input::new(&[200, b'a', b'b', b'c']);
        assert_eq!(input.bytes(2), b"ab", "200 % 3 = 2");
        assert_eq!(input.rest(), b"c");
    }
}
