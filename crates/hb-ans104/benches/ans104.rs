//! ANS-104 benchmarks (docs/PERFORMANCE.md): `cargo bench -p hb-ans104`.
//!
//! Parse and verify one item of each type from arbundles'
//! fixtures (tests/data/arbundles-fixtures.txt), beside the deep hash alone
//! (the signing message) so the signature check's share shows in one run.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hb_ans104::DataItem;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    include_str!("../tests/data/arbundles-fixtures.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let hex = f[3];
            let bytes = (0..hex.len() / 2)
                // The committed fixture is hex (its test checks it).
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            (f[0].to_string(), bytes)
        })
        .collect()
}

fn bench_items(c: &mut Criterion) {
    let mut g = c.benchmark_group("ans104");
    for (name, bytes) in fixtures() {
        if name == "type2-bare" {
            continue;
        }
        let item = DataItem::parse(&bytes).expect("fixture parses");
        g.bench_function(format!("{name} parse"), |b| {
            b.iter(|| DataItem::parse(black_box(&bytes)))
        });
        g.bench_function(format!("{name} signing message"), |b| {
            b.iter(|| black_box(&item).signing_message())
        });
        g.bench_function(format!("{name} parse + verify"), |b| {
            b.iter(|| {
                DataItem::parse(black_box(&bytes))
                    .and_then(|i| i.verify())
                    .expect("fixture verifies")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_items);
criterion_main!(benches);
