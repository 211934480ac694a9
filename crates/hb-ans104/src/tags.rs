//! ANS-104 tags: an Avro array of `{name: bytes, value: bytes}` records
//! (SPEC §10.1).
//!
//! The decoder accepts several blocks, negative block counts (count −n then
//! a varint block byte size, which must be non-negative and is otherwise not
//! checked, as in arbundles) and the empty encoding; the encoder writes one
//! block and the terminator, like arbundles, and nothing at all for no tags.

use crate::error::{Ans104Error, Result};

/// At most this many tags per item.
pub const MAX_TAGS: usize = 128;
/// A tag name is 1 to this many bytes.
pub const MAX_TAG_NAME: usize = 1024;
/// A tag value is 0 to this many bytes.
pub const MAX_TAG_VALUE: usize = 3072;

/// One tag, bytes as written (names need not be UTF-8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The name, 1..=1024 bytes.
    pub name: Vec<u8>,
    /// The value, 0..=3072 bytes.
    pub value: Vec<u8>,
}

impl Tag {
    /// A tag from anything byte-like.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Tag {
        Tag {
            name: name.into(),
            value: value.into(),
        }
    }
}

const FIELD: &str = "tags";

/// Reads one zigzag varint long at `*pos`; `base` is the offset of `bytes`
/// in the item, for errors.
fn read_long(bytes: &[u8], pos: &mut usize, base: usize) -> Result<i64> {
    let start = *pos;
    let mut n: u64 = 0;
    let mut shift = 0u32;
    loop {
        let Some(&b) = bytes.get(*pos) else {
            return Err(Ans104Error::Truncated {
                field: FIELD,
                offset: base + start,
                needed: *pos - start + 1,
                available: bytes.len() - start,
            });
        };
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(Ans104Error::Malformed {
                field: FIELD,
                offset: base + start,
                reason: "varint overflows 64 bits",
            });
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
}

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a length-prefixed byte string of `min..=max` bytes.
fn read_bytes(
    bytes: &[u8],
    pos: &mut usize,
    base: usize,
    min: usize,
    max: usize,
    what: &'static str,
) -> Result<Vec<u8>> {
    let start = *pos;
    let len = read_long(bytes, pos, base)?;
    if len < 0 {
        return Err(Ans104Error::Malformed {
            field: FIELD,
            offset: base + start,
            reason: "negative byte-string length",
        });
    }
    let len = len as u64;
    if len < min as u64 || len > max as u64 {
        return Err(Ans104Error::Malformed {
            field: FIELD,
            offset: base + start,
            reason: what,
        });
    }
    let len = len as usize;
    let available = bytes.len() - *pos;
    if len > available {
        return Err(Ans104Error::Truncated {
            field: FIELD,
            offset: base + *pos,
            needed: len,
            available,
        });
    }
    let v = bytes[*pos..*pos + len].to_vec();
    *pos += len;
    Ok(v)
}

/// Decodes the raw tag bytes of an item, checking them against the
/// header's tag count. `base` is the offset of `bytes` in the item, for
/// errors. Every byte must be consumed.
pub fn decode_tags(bytes: &[u8], expected_count: u64, base: usize) -> Result<Vec<Tag>> {
    if expected_count > MAX_TAGS as u64 {
        return Err(Ans104Error::Malformed {
            field: "tag count",
            offset: base.saturating_sub(16),
            reason: "more than 128 tags",
        });
    }
    let mut tags = Vec::new();
    if bytes.is_empty() {
        // arbundles writes nothing at all for an item without tags.
        if expected_count != 0 {
            return Err(Ans104Error::Malformed {
                field: FIELD,
                offset: base,
                reason: "decoded tag count differs from the header's",
            });
        }
        return Ok(tags);
    }
    let mut pos = 0;
    loop {
        let block_at = pos;
        let mut count = read_long(bytes, &mut pos, base)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = count.checked_neg().ok_or(Ans104Error::Malformed {
                field: FIELD,
                offset: base + block_at,
                reason: "block count out of range",
            })?;
            let size_at = pos;
            if read_long(bytes, &mut pos, base)? < 0 {
                return Err(Ans104Error::Malformed {
                    field: FIELD,
                    offset: base + size_at,
                    reason: "negative block byte size",
                });
            }
        }
        if count as u64 > expected_count - tags.len() as u64 {
            return Err(Ans104Error::Malformed {
                field: FIELD,
                offset: base + block_at,
                reason: "more tags than the header's count",
            });
        }
        for _ in 0..count {
            let name = read_bytes(
                bytes,
                &mut pos,
                base,
                1,
                MAX_TAG_NAME,
                "tag name not 1..1024 bytes",
            )?;
            let value = read_bytes(
                bytes,
                &mut pos,
                base,
                0,
                MAX_TAG_VALUE,
                "tag value over 3072 bytes",
            )?;
            tags.push(Tag { name, value });
        }
    }
    if tags.len() as u64 != expected_count {
        return Err(Ans104Error::Malformed {
            field: FIELD,
            offset: base + pos,
            reason: "decoded tag count differs from the header's",
        });
    }
    if pos != bytes.len() {
        return Err(Ans104Error::Malformed {
            field: FIELD,
            offset: base + pos,
            reason: "bytes left after the tags' terminator",
        });
    }
    Ok(tags)
}

/// Checks the limits of SPEC §10.1 on tags being written.
pub fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Ans104Error::Invalid("more than 128 tags"));
    }
    for t in tags {
        if t.name.is_empty() || t.name.len() > MAX_TAG_NAME {
            return Err(Ans104Error::Invalid("tag name not 1..1024 bytes"));
        }
        if t.value.len() > MAX_TAG_VALUE {
            return Err(Ans104Error::Invalid("tag value over 3072 bytes"));
        }
    }
    Ok(())
}

/// Encodes tags as arbundles does: nothing for no tags, else one block and
/// the terminator. Checks the limits first.
pub fn encode_tags(tags: &[Tag]) -> Result<Vec<u8>> {
    check_tags(tags)?;
    let mut out = Vec::new();
    if tags.is_empty() {
        return Ok(out);
    }
    // Lengths are bounded by the checks above: the casts are exact.
    write_long(&mut out, tags.len() as i64);
    for t in tags {
        write_long(&mut out, t.name.len() as i64);
        out.extend_from_slice(&t.name);
        write_long(&mut out, t.value.len() as i64);
        out.extend_from_slice(&t.value);
    }
    out.push(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<Tag> {
        vec![Tag::new("a", "1"), Tag::new("a", "")]
    }

    #[test]
    fn round_trip_one_block_and_duplicates_kept_in_order() {
        let enc = encode_tags(&two()).unwrap();
        assert_eq!(enc, vec![4, 2, b'a', 2, b'1', 2, b'a', 0, 0]);
        assert_eq!(decode_tags(&enc, 2, 0).unwrap(), two());
    }

    #[test]
    fn several_blocks_and_negative_counts() {
        // block of 1, negative block of 1 with byte size 5, terminator.
        let bytes = vec![2, 2, b'a', 2, b'1', 1, 8, 2, b'a', 0, 0];
        assert_eq!(decode_tags(&bytes, 2, 0).unwrap(), two());
    }

    #[test]
    fn empty_forms() {
        assert_eq!(decode_tags(&[], 0, 0).unwrap(), vec![]);
        assert_eq!(decode_tags(&[0], 0, 0).unwrap(), vec![]);
        assert_eq!(encode_tags(&[]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn counts_and_lengths_are_checked() {
        let enc = encode_tags(&two()).unwrap();
        assert!(matches!(
            decode_tags(&enc, 3, 0),
            Err(Ans104Error::Malformed { .. })
        ));
        assert!(matches!(
            decode_tags(&enc, 1, 0),
            Err(Ans104Error::Malformed { .. })
        ));
        let mut longer = enc.clone();
        longer.push(0);
        assert!(matches!(
            decode_tags(&longer, 2, 10),
            Err(Ans104Error::Malformed { offset: 19, .. })
        ));
        assert!(matches!(
            decode_tags(&enc[..enc.len() - 1], 2, 0),
            Err(Ans104Error::Truncated { .. })
        ));
        assert!(matches!(
            decode_tags(&[], 1, 0),
            Err(Ans104Error::Malformed { .. })
        ));
        assert!(decode_tags(&[0], 129, 0).is_err());
    }

    #[test]
    fn limits() {
        let empty_name = vec![2, 0, 0, 0];
        assert!(decode_tags(&empty_name, 1, 0).is_err());
        assert!(encode_tags(&[Tag::new("", "x")]).is_err());
        assert!(encode_tags(&[Tag::new(vec![b'n'; 1025], "")]).is_err());
        assert!(encode_tags(&[Tag::new("n", vec![0; 3073])]).is_err());
        let ok = vec![Tag::new(vec![b'n'; 1024], vec![0; 3072])];
        assert_eq!(decode_tags(&encode_tags(&ok).unwrap(), 1, 0).unwrap(), ok);
        let many: Vec<Tag> = (0..129).map(|_| Tag::new("k", "v")).collect();
        assert!(encode_tags(&many).is_err());
        assert!(encode_tags(&many[..128]).is_ok());
    }

    #[test]
    fn varint_overflow_is_malformed() {
        let bytes = [0xff; 11];
        assert!(matches!(
            decode_tags(&bytes, 1, 0),
            Err(Ans104Error::Malformed { .. })
        ));
    }
}
