//! Arweave's deep hash with SHA-384, and the signing message of a data item
//! (SPEC §10.1).

use sha2::{Digest, Sha384};

/// A deep-hash input: a blob of bytes, or a list of inputs.
#[derive(Clone, Copy, Debug)]
pub enum DeepHashItem<'a> {
    /// Bytes.
    Blob(&'a [u8]),
    /// A list of inputs.
    List(&'a [DeepHashItem<'a>]),
}

/// `deepHash(blob b) = H(H("blob" ‖ decimal(len b)) ‖ H(b))`;
/// `deepHash(list L) = fold(H("list" ‖ decimal(len L)), acc → H(acc ‖ deepHash(item)))`.
pub fn deep_hash(item: DeepHashItem<'_>) -> [u8; 48] {
    match item {
        DeepHashItem::Blob(b) => {
            let tag = Sha384::new()
                .chain_update(b"blob")
                .chain_update(b.len().to_string().as_bytes())
                .finalize();
            let data = Sha384::digest(b);
            Sha384::new()
                .chain_update(tag)
                .chain_update(data)
                .finalize()
                .into()
        }
        DeepHashItem::List(l) => {
            let mut acc: [u8; 48] = Sha384::new()
                .chain_update(b"list")
                .chain_update(l.len().to_string().as_bytes())
                .finalize()
                .into();
            for child in l {
                acc = Sha384::new()
                    .chain_update(acc)
                    .chain_update(deep_hash(*child))
                    .finalize()
                    .into();
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_follows_the_definition() {
        let b = b"hello";
        let expected: [u8; 48] = Sha384::new()
            .chain_update(Sha384::digest(b"blob5"))
            .chain_update(Sha384::digest(b))
            .finalize()
            .into();
        assert_eq!(deep_hash(DeepHashItem::Blob(b)), expected);
    }

    #[test]
    fn list_folds_over_children() {
        let a = DeepHashItem::Blob(b"a");
        let b = DeepHashItem::Blob(b"");
        let mut acc: [u8; 48] = Sha384::digest(b"list2").into();
        for x in [a, b] {
            acc = Sha384::new()
                .chain_update(acc)
                .chain_update(deep_hash(x))
                .finalize()
                .into();
        }
        assert_eq!(deep_hash(DeepHashItem::List(&[a, b])), acc);
        assert_ne!(
            deep_hash(DeepHashItem::List(&[a, b])),
            deep_hash(DeepHashItem::List(&[b, a]))
        );
    }
}
