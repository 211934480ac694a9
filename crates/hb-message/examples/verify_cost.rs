//! Signature verification work, for instruction counts under callgrind
//! (docs/PERFORMANCE.md, hb-message): each measured operation is a
//! `#[inline(never)]` function named `measure_*`, so that callgrind can
//! count it alone whatever the setup costs:
//!
//! ```sh
//! cargo build --release -p hb-message --example verify_cost
//! valgrind --tool=callgrind --callgrind-out-file=verify.cg \
//!   target/release/examples/verify_cost
//! callgrind_annotate --inclusive=yes verify.cg | grep measure_
//! ```
//!
//! Each `measure_*` function checks `N` = 64 signatures (or 16 for the
//! `_16` ones), so its inclusive count divided by `N` is the cost per
//! signature. Without valgrind it prints the answers (all valid).

use std::hint::black_box;

use hb_message::{verify_batch, IdSelector, Message, NodeKey, Value};

/// A message of 10 keys, as `sample()` in `benches/message.rs`.
fn sample(n: usize) -> Message {
    let mut m = Message::new();
    for i in 0..10 {
        let v: Value = match i % 3 {
            0 => Value::Text("x".repeat(90)),
            1 => Value::Bytes(vec![i as u8; 90]),
            _ => Value::Int(i * 1_000_003),
        };
        m.insert(&format!("key-{i}"), v).expect("valid key");
    }
    m.with("n", n as i64).expect("key")
}

fn signed(n: usize, one_key: bool) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let seed = if one_key { 200 } else { i as u8 };
            sample(i)
                .commit(&NodeKey::from_seed(&[seed; 32]), None)
                .expect("commit")
        })
        .collect()
}

#[inline(never)]
fn measure_verify_strict(
    items: &[(
        ed25519_dalek::VerifyingKey,
        [u8; 32],
        ed25519_dalek::Signature,
    )],
) -> bool {
    items.iter().all(|(k, d, s)| k.verify_strict(d, s).is_ok())
}

#[inline(always)]
fn single(ms: &[&Message]) -> bool {
    ms.iter()
        .all(|m| m.verify(&IdSelector::All).is_ok_and(|v| v.is_valid()))
}

#[inline(always)]
fn batch(ms: &[&Message]) -> bool {
    verify_batch(ms).iter().all(|v| v.is_valid())
}

#[inline(never)]
fn measure_single(ms: &[&Message]) -> bool {
    single(ms)
}

#[inline(never)]
fn measure_batch(ms: &[&Message]) -> bool {
    batch(ms)
}

#[inline(never)]
fn measure_single_16(ms: &[&Message]) -> bool {
    single(ms)
}

#[inline(never)]
fn measure_batch_16(ms: &[&Message]) -> bool {
    batch(ms)
}

#[inline(never)]
fn measure_batch_one_key(ms: &[&Message]) -> bool {
    batch(ms)
}

fn main() {
    let many = signed(64, false);
    let refs: Vec<&Message> = many.iter().collect();
    let one = signed(64, true);
    let one_refs: Vec<&Message> = one.iter().collect();
    let strict: Vec<_> = (0..64u8)
        .map(|i| {
            let k = NodeKey::from_seed(&[i; 32]);
            let d = [i; 32];
            (k.verifying_key(), d, k.sign(&d))
        })
        .collect();
    // `verify_cost batch 1000` / `verify_cost single 1000`: loop one of
    // them, for `perf record`.
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, rounds] = args.as_slice() {
        let rounds: usize = rounds.parse().expect("a number of rounds");
        for _ in 0..rounds {
            black_box(match mode.as_str() {
                "batch" => batch(black_box(&refs)),
                _ => single(black_box(&refs)),
            });
        }
        return;
    }
    // Warm the key cache, as in a running node: the first sight of a key
    // costs its checks once.
    black_box(single(&refs) && single(&one_refs));
    let answers = [
        measure_verify_strict(black_box(&strict)),
        measure_single(black_box(&refs)),
        measure_batch(black_box(&refs)),
        measure_single_16(black_box(&refs[..16])),
        measure_batch_16(black_box(&refs[..16])),
        measure_batch_one_key(black_box(&one_refs)),
    ];
    println!("all valid: {answers:?}");
}
