//! The stored form of records: the record codec plus an integrity check.
//!
//! Every value a cache writes is `codec::encode(record)` (one version byte,
//! then bincode; SPEC §3.3) followed by the CRC-32 (IEEE, little-endian) of
//! those bytes. Reading checks the CRC before decoding, so a truncated,
//! garbled or bit-flipped record is [`StoreError::Corrupt`] naming its key,
//! never a panic and never wrong data.

use hb_message::codec::{self, Record, DEFAULT_RECORD_LIMIT};

use crate::error::StoreError;

const CRC_LEN: usize = 4;

/// Encodes a record for storage.
pub(crate) fn encode<R: Record>(record: &R) -> Result<Vec<u8>, StoreError> {
    // Room for the checksum, so appending it does not reallocate.
    let mut bytes = codec::encode_reserving(record, CRC_LEN).map_err(|_| StoreError::TooLarge {
        record: R::NAME,
        limit: DEFAULT_RECORD_LIMIT,
    })?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// Decodes a record read at `key`.
pub(crate) fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R, StoreError> {
    let split = bytes
        .len()
        .checked_sub(CRC_LEN)
        .ok_or_else(|| StoreError::corrupt(key, format!("{} record too short", R::NAME)))?;
    let (body, crc) = bytes.split_at(split);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != want {
        return Err(StoreError::corrupt(
            key,
            format!("{} record fails its checksum", R::NAME),
        ));
    }
    codec::decode(body).map_err(|e| StoreError::corrupt(key, e.to_string()))
}

/// Serde helpers storing an [`hb_message::Id`] as its raw 32 bytes.
pub(crate) mod id_bytes {
    use hb_message::Id;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(id: &Id, s: S) -> Result<S::Ok, S::Error> {
        id.as_bytes().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        <[u8; 32]>::deserialize(d).map(Id)
    }
}

/// Serde helper reading a `Vec<u8>` field in one piece. bincode writes a
/// `Vec<u8>` (a sequence of `u8`) exactly as it writes bytes: a `u64`
/// length, then the raw bytes. So the stored format is unchanged and only
/// reading differs: one bounded copy instead of a visitor call per byte.
pub(crate) mod byte_vec {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(ByteVec)
    }

    struct ByteVec;

    impl<'de> Visitor<'de> for ByteVec {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        // Formats that hand out a `Vec<u8>` as a sequence.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DedupEntry, LeaseRecord, LocationRecord, StateRecord};
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            // With or without a valid checksum: an error or a record, never a panic.
            let mut sealed = bytes.clone();
            sealed.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            for input in [&bytes, &sealed] {
                let key = crate::keys::sched(&hb_message::Id([1; 32]), 0);
                if let Ok(stored) = crate::scheduler_cache::parse(key, input.clone()) {
                    let _ = stored.message();
                }
                let _ = decode::<StateRecord>(b"k", input);
                let _ = decode::<DedupEntry>(b"k", input);
                let _ = decode::<LocationRecord>(b"k", input);
                let _ = decode::<LeaseRecord>(b"k", input);
            }
            let _ = crate::keys::printable(&bytes);
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        n: u64,
        text: String,
    }

    impl Record for Probe {
        const VERSION: u8 = 1;
        const NAME: &'static str = "probe";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        bytes: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct ReadInOnePiece {
        #[serde(deserialize_with = "byte_vec::deserialize")]
        bytes: Vec<u8>,
    }

    impl Record for Plain {
        const VERSION: u8 = 1;
        const NAME: &'static str = "plain";
    }

    impl Record for ReadInOnePiece {
        const VERSION: u8 = 1;
        const NAME: &'static str = "one piece";
    }

    #[test]
    fn byte_vec_reads_what_a_plain_vec_writes() {
        for len in [0, 1, 32, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let stored = encode(&Plain {
                bytes: bytes.clone(),
            })
            .unwrap();
            let read: ReadInOnePiece = decode(b"k", &stored).unwrap();
            assert_eq!(read.bytes, bytes);
            // And back: the field is written as before.
            assert_eq!(encode(&read).unwrap(), stored);
            for n in 0..stored.len() {
                assert!(decode::<ReadInOnePiece>(b"k", &stored[..n]).is_err());
            }
        }
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_corrupt() {
        let bytes = encode(&Probe {
            n: 42,
            text: "hello".into(),
        })
        .unwrap();
        assert_eq!(decode::<Probe>(b"k", &bytes).unwrap().n, 42);
        for n in 0..bytes.len() {
            let err = decode::<Probe>(b"k", &bytes[..n]).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { ref key, .. } if key == "k"));
        }
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(
                matches!(
                    decode::<Probe>(b"k", &flipped),
                    Err(StoreError::Corrupt { .. })
                ),
                "bit {i}"
            );
        }
    }
}
