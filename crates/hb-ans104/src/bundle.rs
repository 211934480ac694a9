//! ANS-104 bundles: `u256 count` ‖ `count × (u256 size ‖ 32-byte ID)` ‖ the
//! items, integers little-endian as in arbundles. Nested bundles are data.

use crate::error::{Ans104Error, Result};
use crate::item::DataItem;

fn u256_to_usize(b: &[u8], field: &'static str, offset: usize) -> Result<usize> {
    if b[8..].iter().any(|&x| x != 0) {
        return Err(Ans104Error::Malformed {
            field,
            offset,
            reason: "value does not fit in 64 bits",
        });
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    usize::try_from(u64::from_le_bytes(a)).map_err(|_| Ans104Error::Malformed {
        field,
        offset,
        reason: "value does not fit in memory",
    })
}

fn u256(v: usize) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..8].copy_from_slice(&(v as u64).to_le_bytes());
    a
}

/// Serialises items into a bundle.
pub fn encode_bundle(items: &[DataItem]) -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = items.iter().map(DataItem::serialize).collect();
    let mut out =
        Vec::with_capacity(32 + 64 * items.len() + bodies.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&u256(items.len()));
    for (item, body) in items.iter().zip(&bodies) {
        out.extend_from_slice(&u256(body.len()));
        out.extend_from_slice(&item.id_bytes());
    }
    for body in &bodies {
        out.extend_from_slice(body);
    }
    out
}

/// Parses a bundle: every item parses, its ID matches the header's, and
/// the items fill the rest exactly. Offsets in errors are from the start
/// of the bundle. Signatures are not verified here.
pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<DataItem>> {
    if bytes.len() < 32 {
        return Err(Ans104Error::Truncated {
            field: "bundle count",
            offset: 0,
            needed: 32,
            available: bytes.len(),
        });
    }
    let count = u256_to_usize(&bytes[..32], "bundle count", 0)?;
    let header_len = count
        .checked_mul(64)
        .and_then(|h| h.checked_add(32))
        .filter(|&h| h <= bytes.len())
        .ok_or(Ans104Error::Truncated {
            field: "bundle headers",
            offset: 32,
            needed: count.saturating_mul(64),
            available: bytes.len() - 32,
        })?;
    let mut items = Vec::with_capacity(count);
    let mut pos = header_len;
    for i in 0..count {
        let h = 32 + 64 * i;
        let size = u256_to_usize(&bytes[h..h + 32], "bundle item size", h)?;
        let available = bytes.len() - pos;
        if size > available {
            return Err(Ans104Error::Truncated {
                field: "bundle item",
                offset: pos,
                needed: size,
                available,
            });
        }
        let item = DataItem::parse(&bytes[pos..pos + size]).map_err(|e| shift(e, pos))?;
        if item.id_bytes()[..] != bytes[h + 32..h + 64] {
            return Err(Ans104Error::Malformed {
                field: "bundle item id",
                offset: h + 32,
                reason: "ID differs from sha256 of the item's signature",
            });
        }
        items.push(item);
        pos += size;
    }
    if pos != bytes.len() {
        return Err(Ans104Error::Malformed {
            field: "bundle",
            offset: pos,
            reason: "bytes left after the last item",
        });
    }
    Ok(items)
}

/// Moves an item's error offset to the bundle's frame.
fn shift(e: Ans104Error, by: usize) -> Ans104Error {
    match e {
        Ans104Error::Truncated {
            field,
            offset,
            needed,
            available,
        } => Ans104Error::Truncated {
            field,
            offset: offset + by,
            needed,
            available,
        },
        Ans104Error::Malformed {
            field,
            offset,
            reason,
        } => Ans104Error::Malformed {
            field,
            offset: offset + by,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{sign_ed25519, Unsigned};

    #[test]
    fn round_trip_and_checks() {
        let a = sign_ed25519(
            [1; 32],
            Unsigned {
                data: b"a".to_vec(),
                ..Default::default()
            },
        )
        .unwrap();
        let b = sign_ed25519([2; 32], Unsigned::default()).unwrap();
        let bytes = encode_bundle(&[a.clone(), b.clone()]);
        assert_eq!(decode_bundle(&bytes).unwrap(), vec![a, b]);
        assert_eq!(decode_bundle(&encode_bundle(&[])).unwrap(), vec![]);
        let mut bad_id = bytes.clone();
        bad_id[32 + 32] ^= 1;
        assert!(matches!(
            decode_bundle(&bad_id),
            Err(Ans104Error::Malformed {
                field: "bundle item id",
                ..
            })
        ));
        assert!(decode_bundle(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_bundle(&longer).is_err());
        let mut huge = bytes;
        huge[..32].copy_from_slice(&[0xff; 32]);
        assert!(decode_bundle(&huge).is_err());
    }
}
