//! Lua engine benchmarks (SPEC §6.10): `cargo bench -p hb-process --bench
//! lua_engine`.
//!
//! - `compute`: one aos-style Handlers slot on a warm VM (a small balance
//!   update, a print and a Send), state conversion included;
//! - `snapshot` and `restore`: the whole heap of that process after 100
//!   slots.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hb_message::{msg, Message};
use hb_process::lua::{LuaLimits, LuaProcess};

const SCRIPT: &str = include_str!("ledger_like.lua");

fn body(i: usize) -> Message {
    msg! { "action" => "Transfer", "who" => format!("user-{}", i % 50) }
}

fn warm() -> (LuaProcess, Message) {
    let (mut p, mut s) =
        LuaProcess::init(&msg! { "script" => SCRIPT }, LuaLimits::default()).expect("init");
    for i in 0..100 {
        let a = msg! { "slot" => i as i64, "body" => body(i) };
        s = p
            .handle("compute", &s, &a, "pid", "node")
            .expect("handle")
            .expect("compute")
            .state;
    }
    (p, s)
}

fn bench(c: &mut Criterion) {
    let (mut p, mut s) = warm();
    let mut i = 100usize;
    c.bench_function("lua/compute", |b| {
        b.iter(|| {
            let a = msg! { "slot" => i as i64, "body" => body(i) };
            i += 1;
            s = p
                .handle("compute", &s, &a, "pid", "node")
                .expect("handle")
                .expect("compute")
                .state;
        })
    });
    let (p, s) = warm();
    c.bench_function("lua/snapshot", |b| {
        b.iter(|| black_box(p.snapshot().expect("snapshot")))
    });
    let snap = p.snapshot().expect("snapshot");
    let heap = snap
        .get("heap")
        .and_then(|v| v.as_bytes())
        .expect("heap")
        .to_vec();
    c.bench_function("lua/restore", |b| {
        b.iter(|| black_box(LuaProcess::restore(&heap, &s, LuaLimits::default()).expect("restore")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
