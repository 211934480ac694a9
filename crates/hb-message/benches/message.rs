//! Message-model benchmarks (docs/PERFORMANCE.md): `cargo bench -p hb-message`.
//!
//! Each operation is measured beside its baseline (a bare sha256 over the
//! same bytes, a bare ed25519-dalek `verify_strict`, single verification
//! for batches) so that ratios come from one run.

use std::time::Instant;

use criterion::{black_box, criterion_group, BatchSize, Criterion, Throughput};
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

/// `sample()`'s size in values an ANS-104 tag can hold (text, and bytes
/// that are not UTF-8).
fn ans104_sample() -> Message {
    let mut m = Message::new();
    for i in 0..10 {
        let v = if i % 2 == 0 {
            Value::Text("x".repeat(90))
        } else {
            Value::Bytes(vec![0xff; 90])
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
    g.bench_function("ed25519 key decompression + verify_strict", |b| {
        b.iter(|| {
            ed25519_dalek::VerifyingKey::from_bytes(black_box(vk.as_bytes()))
                .expect("key")
                .verify_strict(black_box(&digest), black_box(&sig))
        })
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&signed).verify(&IdSelector::All))
    });
    // A message of the same size as one ans104@1.0 commitment: a type-2
    // item rebuilt from the message, then its ed25519 signature.
    let item_signed = ans104_sample()
        .commit_with(hb_message::CommitmentDevice::Ans104, &key, None)
        .expect("commit ans104");
    g.bench_function("verify ans104@1.0 (type 2)", |b| {
        b.iter(|| black_box(&item_signed).verify(&IdSelector::All))
    });
    let zebra_key = ed25519_zebra::VerificationKey::try_from(vk.to_bytes()).expect("key");
    let zebra_sig = ed25519_zebra::Signature::from_bytes(&sig.to_bytes());
    g.bench_function("ed25519-zebra verify, ZIP-215 (reference)", |b| {
        b.iter(|| zebra_key.verify(black_box(&zebra_sig), black_box(&digest)))
    });
    g.finish();

    let mut g = c.benchmark_group("verify batch");
    for n in [16usize, 64] {
        let many = signed_messages(n, false);
        let refs: Vec<&Message> = many.iter().collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify x{n} one by one"), |b| {
            b.iter(|| all_valid_one_by_one(black_box(&refs)))
        });
        g.bench_function(format!("verify_batch x{n}"), |b| {
            b.iter(|| verify_batch(black_box(&refs)))
        });
    }
    g.finish();
}

/// `n` signed `sample()` messages, each by its own key or all by one.
fn signed_messages(n: usize, one_key: bool) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let seed = if one_key { 200 } else { i as u8 };
            let k = NodeKey::from_seed(&[seed; 32]);
            sample()
                .with("n", i as i64)
                .expect("key")
                .commit(&k, None)
                .expect("commit")
        })
        .collect()
}

fn all_valid_one_by_one(refs: &[&Message]) -> bool {
    refs.iter().all(|m| {
        m.verify(&IdSelector::All)
            .map(|v| v.is_valid())
            .unwrap_or(false)
    })
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
    // The answer to a signed schedule request: a signed assignment whose
    // body is a signed message. Through the `serde_json::Value` tree (how
    // the node answered before) and written directly (`to_json_vec`).
    let node = NodeKey::from_seed(&[7; 32]);
    let body = hb_message::msg! { "target" => "x".repeat(43), "action" => "Ping", "data" => vec![0x5a_u8; 256] }
        .commit(&NodeKey::from_seed(&[8; 32]), None)
        .expect("signs");
    let assignment = hb_message::msg! {
        "process" => "x".repeat(43), "slot" => 12_345, "hash-chain" => "y".repeat(43),
        "timestamp" => 1_795_996_800_000_i64, "block-height" => 0, "body" => body,
    }
    .commit(&node, None)
    .expect("signs");
    assert_eq!(
        json::to_json_vec(&assignment),
        json::to_json_string(&assignment).into_bytes()
    );
    let mut g = c.benchmark_group("json answer");
    g.bench_function("to_json then text", |b| {
        b.iter(|| json::to_json(black_box(&assignment)).to_string())
    });
    g.bench_function("to_json_vec", |b| {
        b.iter(|| json::to_json_vec(black_box(&assignment)))
    });
    g.finish();
}

/// A JSON object of about 1 MiB of short keys (`"k1f":0`), all public or
/// all private (`"privk1f":0`), and how many keys it has.
fn many_keys(private: bool) -> (String, usize) {
    let prefix = if private { "privk" } else { "k" };
    let mut text = String::from("{");
    let mut n = 0;
    while text.len() < 1 << 20 {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&format!(r#""{prefix}{n:x}":0"#));
        n += 1;
    }
    text.push('}');
    (text, n)
}

/// Decoding a 1 MiB body of many keys: the duplicate-key check must stay
/// linear in the number of keys, private ones included.
fn bench_json_many_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("json 1 MiB of keys");
    g.sample_size(10);
    for private in [false, true] {
        let (text, n) = many_keys(private);
        let kind = if private { "private" } else { "public" };
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("from_json, {n} {kind} keys"), |b| {
            b.iter(|| json::from_json(black_box(text.as_bytes())).expect("decodes"))
        });
        g.bench_function(format!("updates_from_json, {n} {kind} keys"), |b| {
            b.iter(|| json::updates_from_json(black_box(text.as_bytes()), 64).expect("decodes"))
        });
    }
    g.finish();
}

/// The CPU time this thread has run (`CLOCK_THREAD_CPUTIME_ID`), or `None`
/// where the clock is missing. Unlike wall time it leaves out the time
/// other processes hold the core, which on a loaded 2-core machine is most
/// of the noise; what they do to the caches stays in.
fn thread_cpu_seconds() -> Option<f64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    (rc == 0).then_some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
}

/// Median per-iteration time of `a` and `b` (thread CPU time where Linux
/// gives it, else wall time), and the median of their per-round ratio, over
/// rounds that alternate them: the ratio holds up on a shared machine
/// whose load drifts between criterion's groups.
fn interleaved(name: &str, iters: u32, mut a: impl FnMut(), mut b: impl FnMut()) -> f64 {
    const ROUNDS: usize = 31;
    let time = |f: &mut dyn FnMut()| {
        let (t, cpu) = (Instant::now(), thread_cpu_seconds());
        for _ in 0..iters {
            f();
        }
        let spent = match (cpu, thread_cpu_seconds()) {
            (Some(start), Some(end)) => end - start,
            _ => t.elapsed().as_secs_f64(),
        };
        spent / f64::from(iters)
    };
    let (mut ta, mut tb, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = time(&mut a);
            (x, time(&mut b))
        } else {
            let y = time(&mut b);
            (time(&mut a), y)
        };
        ta.push(x);
        tb.push(y);
        r.push(x / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ma, mb, mr) = (median(&mut ta), median(&mut tb), median(&mut r));
    println!(
        "ratio {name}: {mr:.3} (median of {ROUNDS} interleaved rounds; {:.3} µs vs {:.3} µs)",
        ma * 1e6,
        mb * 1e6
    );
    mr
}

/// The ratios docs/PERFORMANCE.md holds targets for.
fn ratios() {
    let m = sample();
    let bytes = canonical::canonical(&m);
    interleaved(
        "unsigned_id / sha256 of its canonical bytes (target <= 3)",
        20_000,
        || {
            black_box(black_box(&m).unsigned_id());
        },
        || {
            black_box(Sha256::digest(black_box(&bytes)));
        },
    );

    let key = NodeKey::from_seed(&[9; 32]);
    let signed = m.commit(&key, None).expect("commit");
    let digest = [7u8; 32];
    let sig = key.sign(&digest);
    let vk = key.verifying_key();
    interleaved(
        "verify / ed25519 verify_strict (target <= 1.2)",
        200,
        || {
            black_box(black_box(&signed).verify(&IdSelector::All)).ok();
        },
        || {
            black_box(vk.verify_strict(black_box(&digest), black_box(&sig))).ok();
        },
    );

    let zebra_key = ed25519_zebra::VerificationKey::try_from(vk.to_bytes()).expect("key");
    let zebra_sig = ed25519_zebra::Signature::from_bytes(&sig.to_bytes());
    interleaved(
        "ed25519-zebra verify (ZIP-215) / ed25519 verify_strict (reference)",
        200,
        || {
            black_box(zebra_key.verify(black_box(&zebra_sig), black_box(&digest))).ok();
        },
        || {
            black_box(vk.verify_strict(black_box(&digest), black_box(&sig))).ok();
        },
    );

    for (n, one_key, iters) in [(16, false, 12), (64, false, 3), (64, true, 3)] {
        let many = signed_messages(n, one_key);
        let refs: Vec<&Message> = many.iter().collect();
        let keys = if one_key { ", one key" } else { "" };
        interleaved(
            &format!("{n} single verifies / verify_batch x{n}{keys} (target >= 1.7)"),
            iters,
            || {
                black_box(all_valid_one_by_one(black_box(&refs)));
            },
            || {
                black_box(verify_batch(black_box(&refs)));
            },
        );
    }

    // The batch equation alone over 64 bare signatures (ed25519-zebra,
    // one equation), against 64 bare verify_strict: what verify_batch
    // would give without the message checks 1-4 and with one equation.
    let keys: Vec<NodeKey> = (0..64u8).map(|i| NodeKey::from_seed(&[i; 32])).collect();
    let digests: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
    let sigs: Vec<ed25519_dalek::Signature> =
        keys.iter().zip(&digests).map(|(k, d)| k.sign(d)).collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> = keys.iter().map(NodeKey::verifying_key).collect();
    let items: Vec<_> = vks
        .iter()
        .zip(&sigs)
        .zip(&digests)
        .map(|((k, s), d)| {
            (
                ed25519_zebra::VerificationKeyBytes::from(k.to_bytes()),
                ed25519_zebra::Signature::from_bytes(&s.to_bytes()),
                *d,
            )
        })
        .collect();
    interleaved(
        "64 verify_strict / ed25519-zebra batch equation x64 (reference)",
        3,
        || {
            black_box(
                vks.iter()
                    .zip(&sigs)
                    .zip(&digests)
                    .all(|((k, s), d)| k.verify_strict(d, s).is_ok()),
            );
        },
        || {
            let mut batch = ed25519_zebra::batch::Verifier::new();
            for (k, s, d) in &items {
                batch.queue((*k, *s, &d[..]));
            }
            black_box(batch.verify(rand::thread_rng()).is_ok());
        },
    );
}

criterion_group!(
    benches,
    bench_ids,
    bench_signatures,
    bench_json,
    bench_json_many_keys
);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if std::env::args().any(|a| a == "--bench") && std::env::var_os("HB_BENCH_NO_RATIOS").is_none()
    {
        ratios();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
