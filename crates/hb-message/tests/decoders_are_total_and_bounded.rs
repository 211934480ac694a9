//! SPEC §2.10: the canonical, JSON and record decoders never panic on
//! arbitrary bytes, and bound their allocations. A counting allocator
//! records the largest single allocation each test thread makes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use hb_message::codec::{self, Record};
use hb_message::{canonical, json, Message, MessageError};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn note(size: usize) {
    // `try_with`: the slot may be gone while a thread exits.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation made while running `f`.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// The bytes allocated in all (frees not subtracted) while running `f`.
fn total_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    TOTAL.with(|t| t.set(0));
    let out = f();
    (out, TOTAL.with(Cell::get))
}

/// What serde reserves at most for a sequence before reading its items
/// (`size_hint::cautious`): bincode records may start a `Vec` this big for
/// a declared length they cannot back, whatever the length declared.
const SERDE_PREALLOC: usize = 1024 * 1024;

/// What any decoder may allocate at once for `len` bytes of input: the
/// input's size times a small factor, plus a fixed allowance.
fn bound(len: usize) -> usize {
    64 * 1024 + 64 * len
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rec {
    slot: u64,
    name: String,
    blob: Vec<u8>,
    items: Vec<u64>,
    body: Message,
}

impl Record for Rec {
    const VERSION: u8 = 1;
    const NAME: &'static str = "fuzz-record";
}

fn decode_all(bytes: &[u8]) {
    let (_, a) = largest_allocation(|| canonical::decode(bytes, 64));
    assert!(a <= bound(bytes.len()), "canonical: {a} bytes at once");
    let (_, a) = largest_allocation(|| json::from_json(bytes));
    assert!(a <= bound(bytes.len()), "json: {a} bytes at once");
    let (_, a) = largest_allocation(|| json::updates_from_json(bytes, 64));
    assert!(a <= bound(bytes.len()), "json updates: {a} bytes at once");
    let (_, a) = largest_allocation(|| codec::decode::<Rec>(bytes));
    assert!(
        a <= SERDE_PREALLOC + bound(bytes.len()),
        "codec: {a} bytes at once"
    );
}

const HUGE: [u8; 8] = [0x80, 0, 0, 0, 0, 0, 0, 0]; // 2^63, big-endian

#[test]
fn huge_declared_lengths_do_not_allocate() {
    let header = b"HBC\x01".to_vec();
    let with = |tail: &[u8]| [header.as_slice(), tail].concat();
    let key_a = [&[0u8, 0, 0, 0, 0, 0, 0, 1][..], b"a"].concat();
    let cases: Vec<Vec<u8>> = vec![
        with(&[&[7u8][..], &HUGE].concat()), // entry count
        with(&[&[7u8, 0, 0, 0, 0, 0, 0, 0, 1][..], &HUGE].concat()), // key length
        with(&[&[7u8, 0, 0, 0, 0, 0, 0, 0, 1][..], &key_a, &[1], &HUGE].concat()), // bytes
        with(&[&[7u8, 0, 0, 0, 0, 0, 0, 0, 1][..], &key_a, &[2], &HUGE].concat()), // text
        with(&[&[7u8, 0, 0, 0, 0, 0, 0, 0, 1][..], &key_a, &[6], &HUGE].concat()), // list
        with(&[&[7u8, 0, 0, 0, 0, 0, 0, 0, 1][..], &key_a, &[7], &HUGE].concat()), // message
        with(&[7u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ];
    for c in &cases {
        let (r, a) = largest_allocation(|| canonical::decode(c, 64));
        assert!(r.is_err());
        assert!(a <= 1024, "{a} bytes allocated for {c:02x?}");
        decode_all(c);
    }
    // Records: a string, a byte sequence, a u64 sequence and a message of
    // 2^63 declared bytes or items.
    let le = 1u64 << 63;
    for field in 0..4 {
        let mut rec = vec![1u8];
        rec.extend(7u64.to_le_bytes()); // slot
        let lens = [0u64, 0, 0, 0];
        for (i, l) in lens.iter().enumerate() {
            let n = if i == field { le } else { *l };
            rec.extend(n.to_le_bytes());
            if i == field {
                break;
            }
        }
        let (r, a) = largest_allocation(|| codec::decode::<Rec>(&rec));
        assert!(r.is_err());
        assert!(
            a <= SERDE_PREALLOC,
            "{a} bytes allocated for record field {field}"
        );
    }
}

#[test]
fn deep_nesting_is_too_deep_not_a_stack_overflow() {
    let depth = 100_000;
    let json_text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    assert!(json::value_from_json(json_text.as_bytes(), 64).is_err());
    let obj = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    assert!(json::from_json(obj.as_bytes()).is_err());
    let mut bytes = b"HBC\x01\x07\x00\x00\x00\x00\x00\x00\x00\x01".to_vec();
    for _ in 0..depth {
        bytes.extend([0, 0, 0, 0, 0, 0, 0, 1, b'a', 7, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
    assert!(matches!(
        canonical::decode(&bytes, 64),
        Err(hb_message::MessageError::TooDeep { limit: 64 })
    ));
}

/// Ways to damage a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
    Huge(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        any::<prop::sample::Index>().prop_map(Mutation::Huge),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            Mutation::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Mutation::Remove(i) => {
                let i = i.index(bytes.len());
                bytes.remove(i);
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Huge(i) => {
                // Overwrite 8 bytes with a length of 2^63.
                let i = i.index(bytes.len());
                for (j, b) in HUGE.iter().enumerate() {
                    if let Some(x) = bytes.get_mut(i + j) {
                        *x = *b;
                    }
                }
            }
        }
    }
    bytes
}

fn record_of(m: Message) -> Rec {
    Rec {
        slot: 9,
        name: "n".into(),
        blob: vec![1, 2, 3],
        items: vec![4, 5],
        body: m,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_errors_or_messages(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
        // With a valid header, the canonical decoder gets past the first check.
        let mut with_header = b"HBC\x01\x07".to_vec();
        with_header.extend(&bytes);
        decode_all(&with_header);
    }

    #[test]
    fn damaged_canonical_bytes_never_panic(
        m in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(canonical::encode_whole(&m), &mutations);
        decode_all(&bytes);
        // What decodes is canonical: encoding it again gives the same bytes.
        if let Ok(back) = canonical::decode(&bytes, 64) {
            prop_assert_eq!(canonical::encode_whole(&back), bytes);
        }
    }

    #[test]
    fn damaged_json_never_panics(
        m in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(json::to_json_string(&m).into_bytes(), &mutations);
        decode_all(&bytes);
        // What parses, round-trips.
        if let Ok(back) = json::from_json(&bytes) {
            prop_assert_eq!(json::from_json(json::to_json_string(&back).as_bytes()).unwrap(), back);
        }
    }

    #[test]
    fn damaged_records_never_panic(
        m in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(codec::encode(&record_of(m)).unwrap(), &mutations);
        decode_all(&bytes);
    }
}

/// A `Rec` whose body is `{"l": [true, true, …]}` with `n` booleans,
/// written byte by byte (2 bytes per boolean, 32 once decoded).
fn record_of_booleans(n: usize) -> Vec<u8> {
    let mut canon = b"HBC\x01\x07".to_vec();
    canon.extend(1u64.to_be_bytes()); // one entry
    canon.extend(1u64.to_be_bytes()); // key length
    canon.push(b'l');
    canon.push(6); // list
    canon.extend((n as u64).to_be_bytes());
    canon.extend([5, 1].repeat(n));
    let mut rec = vec![1u8];
    rec.extend(9u64.to_le_bytes()); // slot
    for _ in 0..3 {
        rec.extend(0u64.to_le_bytes()); // empty name, blob and items
    }
    rec.extend((canon.len() as u64).to_le_bytes());
    rec.extend(canon);
    rec
}

#[test]
fn records_cannot_decode_to_many_times_their_size() {
    // 2 MiB of booleans would be 32 MiB of values: 8× the record's limit
    // of 4 MiB, twice the decoded budget of 16 MiB that limit brings.
    let n = 1 << 20;
    let rec = record_of_booleans(n);
    let limit: u64 = 4 << 20;
    assert!(rec.len() as u64 <= limit);
    let (r, total) = total_allocation(|| codec::decode_with_limit::<Rec>(&rec, limit));
    assert_eq!(
        r.err(),
        Some(MessageError::DecodedTooLarge {
            limit: codec::DECODED_PER_ENCODED * limit
        })
    );
    // Refused before the list was allocated.
    assert!(total < 1 << 20, "{total} bytes allocated");
    // With room for it, the same record decodes.
    let back = codec::decode_with_limits::<Rec>(&rec, limit, 64 << 20).unwrap();
    assert_eq!(
        back.body.get("l").and_then(|l| l.as_list()).map(<[_]>::len),
        Some(n)
    );

    // The default limits: 20 MiB of booleans would be 320 MiB.
    let rec = record_of_booleans(10 << 20);
    let (r, total) = total_allocation(|| codec::decode::<Rec>(&rec));
    assert_eq!(
        r.err(),
        Some(MessageError::DecodedTooLarge {
            limit: codec::DEFAULT_DECODED_LIMIT
        })
    );
    assert!(total < 1 << 20, "{total} bytes allocated");
}
