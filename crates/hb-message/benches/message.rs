//! Message-model benchmarks (docs/PERFORMANCE.md): `cargo bench -p hb-message`.
//!
//! Each operation is measured beside its baseline (a bare sha256 over the
//! same bytes, a bare `verify_strict`) so that ratios come from one run.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::Signer;
use hb_message::{canonical, json, verify_batch, IdSelector, Message, NodeKey, Value};
use sha2::{Digest, Sha256};

/// A message of 10 keys whose canonical form is about 1 KiB.
fn sample() -> Message {
    let mut m = Message::new();
    for i in 0..10 {
        let v: Value = match i % 3 {
            0 => Value::Text("x".repeat(90)),
            1 => Value::Bytes(vec![i as u8; 90]),
            _ => Value::Int(i * 1_000_003),
        };
        m.insert(&format!("key-{i}"), v).expect("valid key");
    }
    m
}

fn bench_ids(c: &mut Criterion) {
    let m = sample();
    let bytes = canonical::canonical(&m);
    let mut g = c.benchmark_group("id");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("sha256 of canonical bytes (baseline)", |b| {
        b.iter(|| Sha256::digest(black_box(&bytes)))
    });
    g.bench_function("unsigned_id", |b| b.iter(|| black_box(&m).unsigned_id()));
    g.finish();
}

fn bench_signatures(c: &mut Criterion) {
    let key = NodeKey::from_seed(&[9; 32]);
    let m = sample();
    let signed = m.commit(&key, None).expect("commit");
    let digest = [7u8; 32];
    let sig = key.sign(&digest);
    let vk = key.verifying_key();
    let dalek_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);

    let mut g = c.benchmark_group("sign");
    g.bench_function("ed25519 sign (baseline)", |b| {
        b.iter(|| dalek_key.sign(black_box(&digest)))
    });
    g.bench_function("commit", |b| b.iter(|| black_box(&m).commit(&key, None)));
    g.finish();

    let mut g = c.benchmark_group("verify");
    g.bench_function("ed25519 verify_strict (baseline)", |b| {
        b.iter(|| vk.verify_strict(black_box(&digest), black_box(&sig)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&signed).verify(&IdSelector::All))
    });
    let many: Vec<Message> = (0..64)
        .map(|i| {
            let k = NodeKey::from_seed(&[i as u8; 32]);
            sample()
                .with("n", i)
                .expect("key")
                .commit(&k, None)
                .expect("commit")
        })
        .collect();
    let refs: Vec<&Message> = many.iter().collect();
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify x64 one by one", |b| {
        b.iter(|| {
            refs.iter().all(|m| {
                m.verify(&IdSelector::All)
                    .map(|v| v.is_valid())
                    .unwrap_or(false)
            })
        })
    });
    g.bench_function("verify_batch x64", |b| {
        b.iter(|| verify_batch(black_box(&refs)))
    });
    g.finish();
}

fn bench_json(c: &mut Criterion) {
    let text = json::to_json_string(&sample());
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| json::from_json(black_box(text.as_bytes())))
    });
    g.bench_function("encode", |b| {
        b.iter_batched(sample, |m| json::to_json_string(&m), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, bench_ids, bench_signatures, bench_json);
criterion_main!(benches);
