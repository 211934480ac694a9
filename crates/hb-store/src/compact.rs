//! The packed form of a message inside a record (assignment records,
//! version 2; `docs/storage.md`, "Record format").
//!
//! The whole canonical encoding (`hb_message::canonical::encode_whole`)
//! writes every length and count as a big-endian `u64`: a signed
//! assignment of ~30 entries spends ~500 of its ~1,100 bytes on them,
//! nearly all zeros. The packed form is the same encoding, value by value
//! and in the same order, without the 4-byte header and with every length
//! and count as an unsigned LEB128 varint; everything else (tags, key and
//! value bytes, the 8-byte integers and floats, booleans) is copied as is.
//!
//! [`pack`] is a transcoding of canonical bytes and [`unpack`] its exact
//! inverse, so reading a record still ends in hb-message's canonical
//! decoder, which checks everything it checks for any stored message
//! (sorted, normalised keys, UTF-8, no trailing bytes, depth). [`unpack`]
//! itself never panics, bounds its nesting, and refuses a length that
//! exceeds its input, so what it allocates is bounded by 8× its input.

use hb_message::canonical::{
    HEADER, TAG_BOOL, TAG_BYTES, TAG_FLOAT, TAG_INT, TAG_LIST, TAG_MESSAGE, TAG_TEXT,
};

/// Why packed (or canonical) bytes could not be transcoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends the packed form of `whole` (the output of `encode_whole`) to
/// `out`.
pub(crate) fn pack(whole: &[u8], max_depth: usize, out: &mut Vec<u8>) -> Result<(), Malformed> {
    let body = whole
        .strip_prefix(&HEADER[..])
        .ok_or(Malformed("missing canonical header"))?;
    let mut t = Transcoder::<Packing> {
        input: body,
        pos: 0,
        out,
        max_depth,
        lengths: std::marker::PhantomData,
    };
    t.top()
}

/// The canonical bytes (`encode_whole` form, header included) of the
/// packed message `packed`.
#[cfg(test)]
pub(crate) fn unpack(packed: &[u8], max_depth: usize) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::new();
    unpack_into(packed, max_depth, &mut out)?;
    Ok(out)
}

/// [`unpack`] into `out` (cleared first), so that a caller can reuse one
/// buffer.
pub(crate) fn unpack_into(
    packed: &[u8],
    max_depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    out.clear();
    // Lengths grow from 1–2 bytes to 8: twice the input is a good guess.
    out.reserve(packed.len().saturating_mul(2).saturating_add(HEADER.len()));
    out.extend_from_slice(&HEADER);
    let mut t = Transcoder::<Unpacking> {
        input: packed,
        pos: 0,
        out,
        max_depth,
        lengths: std::marker::PhantomData,
    };
    t.top()
}

/// How lengths are read and written: canonical (`u64` big-endian) to
/// packed (varint), or back. A type parameter, so each direction is
/// compiled on its own with its length codes inlined.
trait Lengths {
    fn read(input: &[u8], pos: &mut usize) -> Result<u64, Malformed>;
    fn write(out: &mut Vec<u8>, n: u64);
}

/// Canonical in, packed out.
struct Packing;

impl Lengths for Packing {
    #[inline]
    fn read(input: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
        read_u64(input, pos)
    }
    #[inline]
    fn write(out: &mut Vec<u8>, n: u64) {
        write_varint(out, n)
    }
}

/// Packed in, canonical out.
struct Unpacking;

impl Lengths for Unpacking {
    #[inline]
    fn read(input: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
        read_varint(input, pos)
    }
    #[inline]
    fn write(out: &mut Vec<u8>, n: u64) {
        write_u64(out, n)
    }
}

/// One walk over the encoding's grammar, reading lengths one way and
/// writing them the other.
struct Transcoder<'a, 'o, L> {
    input: &'a [u8],
    pos: usize,
    out: &'o mut Vec<u8>,
    max_depth: usize,
    lengths: std::marker::PhantomData<L>,
}

impl<L: Lengths> Transcoder<'_, '_, L> {
    fn top(&mut self) -> Result<(), Malformed> {
        if self.byte()? != TAG_MESSAGE {
            return Err(Malformed("top level must be a message"));
        }
        self.out.push(TAG_MESSAGE);
        self.message(1)?;
        if self.pos != self.input.len() {
            return Err(Malformed("trailing bytes after the message"));
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or(Malformed("unexpected end of input"))?;
        self.pos += 1;
        Ok(b)
    }

    fn copy(&mut self, n: usize) -> Result<(), Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or(Malformed("unexpected end of input"))?;
        self.out.extend_from_slice(&self.input[self.pos..end]);
        self.pos = end;
        Ok(())
    }

    /// A length or count, each unit taking at least `min_unit` input
    /// bytes: so it never exceeds what is left.
    fn len(&mut self, min_unit: usize) -> Result<usize, Malformed> {
        let n = L::read(self.input, &mut self.pos)?;
        let left = self.input.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_unit) <= left)
            .ok_or(Malformed("length exceeds the remaining input"))?;
        L::write(self.out, n as u64);
        Ok(n)
    }

    fn depth(&self, depth: usize) -> Result<(), Malformed> {
        if depth > self.max_depth {
            return Err(Malformed("nested too deep"));
        }
        Ok(())
    }

    fn message(&mut self, depth: usize) -> Result<(), Malformed> {
        self.depth(depth)?;
        // A key length, a key byte and a value of at least two bytes.
        let n = self.len(4)?;
        for _ in 0..n {
            let klen = self.len(1)?;
            self.copy(klen)?;
            self.value(depth)?;
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), Malformed> {
        let tag = self.byte()?;
        self.out.push(tag);
        match tag {
            TAG_BYTES | TAG_TEXT => {
                let n = self.len(1)?;
                self.copy(n)
            }
            TAG_INT | TAG_FLOAT => self.copy(8),
            TAG_BOOL => self.copy(1),
            TAG_LIST => {
                self.depth(depth + 1)?;
                let n = self.len(2)?;
                for _ in 0..n {
                    self.value(depth + 1)?;
                }
                Ok(())
            }
            TAG_MESSAGE => self.message(depth + 1),
            _ => Err(Malformed("unknown value tag")),
        }
    }
}

#[inline]
fn read_u64(input: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    let bytes: [u8; 8] = input
        .get(*pos..*pos + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or(Malformed("unexpected end of input"))?;
    *pos += 8;
    Ok(u64::from_be_bytes(bytes))
}

#[inline]
fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// Unsigned LEB128, at most 10 bytes, no bits past 64.
#[inline]
pub(crate) fn read_varint(input: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    let mut n = 0u64;
    for i in 0..10 {
        let b = *input
            .get(*pos)
            .ok_or(Malformed("unexpected end of input"))?;
        *pos += 1;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return Err(Malformed("varint overflows 64 bits"));
        }
        n |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(Malformed("varint longer than 10 bytes"))
}

/// Unsigned LEB128.
#[inline]
pub(crate) fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::canonical::encode_whole;
    use hb_message::{msg, Message, NodeKey, Value};
    use proptest::prelude::*;

    fn round_trip(m: &Message) -> Vec<u8> {
        let whole = encode_whole(m);
        let mut packed = Vec::new();
        pack(&whole, 128, &mut packed).unwrap();
        assert_eq!(unpack(&packed, 128).unwrap(), whole);
        packed
    }

    #[test]
    fn packing_is_undone_exactly_and_saves_the_zeros() {
        let body = msg! { "data" => vec![0x5au8; 300], "action" => "eval" }
            .commit(&NodeKey::from_seed(&[1; 32]), None)
            .unwrap();
        let m = msg! {
            "a" => 1, "b" => "x", "c" => vec![1u8, 2], "d" => true,
            "e" => Value::float(-1.5).unwrap(),
            "f" => Value::List(vec![Value::from(1), msg! { "z" => 0 }.into(), Value::List(vec![])]),
            "g" => Message::new(),
            "body" => body,
        }
        .commit(&NodeKey::from_seed(&[2; 32]), None)
        .unwrap();
        let packed = round_trip(&m);
        assert!(
            packed.len() < encode_whole(&m).len() * 3 / 4,
            "{}",
            packed.len()
        );
        round_trip(&Message::new());
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for n in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, n);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Ok(n));
            assert_eq!(pos, out.len());
        }
        let mut pos = 0;
        assert!(read_varint(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &mut pos
        )
        .is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut m = msg! { "n" => 0 };
        for _ in 0..10 {
            m = msg! { "n" => m };
        }
        let whole = encode_whole(&m);
        let mut packed = Vec::new();
        pack(&whole, 128, &mut packed).unwrap();
        assert!(unpack(&packed, 11).is_ok());
        assert_eq!(unpack(&packed, 10), Err(Malformed("nested too deep")));
        let mut again = Vec::new();
        assert!(pack(&whole, 10, &mut again).is_err());
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // A message claiming u64::MAX entries, and a text claiming 2^60 bytes.
        let mut claim = vec![TAG_MESSAGE];
        write_varint(&mut claim, u64::MAX);
        assert!(unpack(&claim, 128).is_err());
        let mut text = vec![TAG_MESSAGE, 1, 1, b'a', TAG_TEXT];
        write_varint(&mut text, 1 << 60);
        assert!(unpack(&text, 128).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(whole) = unpack(&bytes, 128) {
                // Whatever unpacks packs back to the same bytes, unless it
                // used non-minimal varints.
                let mut packed = Vec::new();
                prop_assert!(pack(&whole, 128, &mut packed).is_ok());
                prop_assert!(packed.len() <= bytes.len());
            }
            let mut with_header = HEADER.to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = pack(&with_header, 128, &mut Vec::new());
        }
    }
}
