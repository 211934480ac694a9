//! Resolution benchmarks (docs/PERFORMANCE.md, `## hb-device`):
//! `cargo bench -p hb-device --bench resolve`.
//!
//! Resolutions per second of a fold through an 8-device stack of trivial
//! devices (target: at least 100,000 per second on one core), beside the
//! baseline of a plain `message@1.0` field read, on a current-thread tokio
//! runtime. Each is measured with HashPaths updated (the default) and
//! ignored.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hb_device::test_support::{stack_of, test_context};
use hb_device::HashpathMode;
use hb_message::{msg, Message, Value};

// The `hb` binary's global allocator (docs/PERFORMANCE.md, "Allocators"):
// figures measured before it was set here (with the system allocator) do not
// compare with later ones.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A plain message of a few fields, like a small process state.
fn plain() -> Message {
    msg! {
        "type" => "Process",
        "owner" => "x".repeat(43),
        "count" => 12,
        "data" => "some text of a plain message",
        "nested" => msg! { "a" => 1, "b" => "two" }
    }
}

fn bench_resolve(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let mut g = c.benchmark_group("resolve");
    g.throughput(Throughput::Elements(1));
    for (label, mode) in [
        ("hashpath", HashpathMode::Update),
        ("no-hashpath", HashpathMode::Ignore),
    ] {
        let ctx = test_context().with_hashpath(mode);
        let base = plain();
        let get = msg! { "path" => "data" };
        g.bench_function(format!("message@1.0 get (baseline), {label}"), |b| {
            b.iter(|| {
                let out = rt.block_on(ctx.resolve(black_box(base.clone()), &get));
                black_box(out.expect("the field exists"))
            })
        });

        let mut stack = stack_of(&["mark"; 8]);
        for (k, v) in plain().into_iter() {
            stack.insert_key(k, v);
        }
        let mark = msg! { "path" => "mark" };
        // The fold does what the table says: 8 trail entries.
        let check = rt
            .block_on(ctx.resolve(stack.clone(), &mark))
            .expect("fold");
        assert_eq!(
            check
                .ok_message()
                .and_then(|m| m.get("trail").cloned())
                .and_then(|t| t.as_list().map(<[Value]>::len)),
            Some(8)
        );
        g.bench_function(format!("stack@1.0 fold of 8 devices, {label}"), |b| {
            b.iter(|| {
                let out = rt.block_on(ctx.resolve(black_box(stack.clone()), &mark));
                black_box(out.expect("fold"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_resolve);
criterion_main!(benches);
