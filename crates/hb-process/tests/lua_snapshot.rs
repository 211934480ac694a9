//! SPEC §6.10 "Snapshot" (v1.1): a process snapshotted and restored at
//! every slot gives byte-identical results and state IDs to one that never
//! stopped, for data kept in the state table, in globals, in upvalues
//! (two closures sharing one), in metatables, in cycles and shared tables,
//! and in handlers added by a message at run time.

use hb_message::{msg, Message, NodeKey, Value};
use hb_process::lua::{Handled, LuaError, LuaLimits, LuaProcess};

const PID: &str = "process-id-0000000000000000000000000000000";

const SCRIPT: &str = r#"
Counter = 0
local hits = 0
function bump() hits = hits + 1 return hits end
function peek() return hits end
Shared = {n = 0, list = {1, 2, 3}}
Shared.self = Shared
Alias = Shared
Meta = setmetatable({}, {__index = function(t, k) return "meta:" .. k end})
string.shout = function(s) return s:upper() .. "!" end
Numbers = {[1] = "one", [2.5] = "two and a half", [true] = "yes", [-7] = "minus seven"}

function init(process) return {log = {}, name = process.name} end

Handlers.add("base", {action = "Step"}, function(msg, state)
  Counter = Counter + 1
  local b = bump()
  Shared.n = Shared.n + 1
  state.log[#state.log + 1] = msg.value
  print("step", Counter, b, peek(), Shared.n, Alias.n, Alias.self.self.n, Meta.x, #state.log, ("hi"):shout())
  local keys = {}
  for k, v in pairs(Numbers) do keys[#keys + 1] = tostring(k) .. "=" .. v end
  print(table.concat(keys, ";"))
  Send({target = "t", n = Counter})
  if LastState ~= nil then print("same state table", LastState == state) end
  LastState = state
end)

Handlers.add("learn", {action = "Learn"}, function(msg, state)
  local word = msg.word
  local seen = 0
  local function count() seen = seen + 1 return seen end
  local function get() return seen end
  Handlers.add("learned-" .. word, {action = word}, function(m, s)
    local c = count()
    print("learned", word, c, get(), Counter, peek())
    s[word] = c
  end)
end)

Handlers.add("fail", {action = "Fail"}, function(msg, state)
  state.failed = (state.failed or 0) + 1
  print("about to fail")
  Send({target = "discarded"})
  error("deliberate")
end)

Handlers.add("global", {action = "Global"}, function(msg, state)
  _G[msg.name] = msg.value
  print("globals", tostring(Dynamic), tostring(Other))
end)
"#;

fn node() -> NodeKey {
    NodeKey::from_seed(&[7; 32])
}

fn messages() -> Vec<Message> {
    let m = |pairs: &[(&str, &str)]| Message::from_pairs(pairs.iter().copied()).unwrap();
    vec![
        m(&[("action", "Step"), ("value", "a")]),
        m(&[("action", "Learn"), ("word", "Hello")]),
        m(&[("action", "Step"), ("value", "b")]),
        m(&[("action", "Hello")]),
        m(&[("action", "Hello")]),
        m(&[("action", "Learn"), ("word", "Bye")]),
        m(&[("action", "Bye")]),
        m(&[("action", "Fail")]),
        m(&[("action", "Step"), ("value", "c")]),
        m(&[("action", "Global"), ("name", "Dynamic"), ("value", "d")]),
        m(&[("action", "Hello")]),
        m(&[("action", "Learn"), ("word", "Hello")]),
        m(&[("action", "Hello")]),
        m(&[("action", "Global"), ("name", "Other"), ("value", "o")]),
        m(&[("action", "Step"), ("value", "d")]),
    ]
}

fn process() -> Message {
    msg! { "script" => SCRIPT, "name" => "snap-test" }
}

fn step(p: &mut LuaProcess, state: &Message, slot: usize, body: &Message) -> Handled {
    let n = node();
    let a = msg! { "slot" => slot as i64, "body" => body.clone() };
    p.handle("compute", state, &a, PID, n.address())
        .unwrap()
        .unwrap()
}

struct Trace {
    results: Vec<String>,
    states: Vec<String>,
    outputs: Vec<String>,
    snapshots: Vec<Vec<u8>>,
}

fn heap_of(snapshot: &Message) -> Vec<u8> {
    snapshot
        .get("heap")
        .and_then(|v| v.as_bytes())
        .expect("heap bytes")
        .to_vec()
}

fn run(restart_every_slot: bool) -> Trace {
    let (mut p, mut state) = LuaProcess::init(&process(), LuaLimits::default()).unwrap();
    let mut t = Trace {
        results: vec![],
        states: vec![],
        outputs: vec![],
        snapshots: vec![],
    };
    for (i, body) in messages().iter().enumerate() {
        let snap = p.snapshot().expect("snapshot");
        assert_eq!(snap.get_message("state"), Some(&state));
        t.snapshots.push(heap_of(&snap));
        if restart_every_slot {
            p = LuaProcess::restore(&heap_of(&snap), &state, LuaLimits::default())
                .expect("restore");
        }
        let h = step(&mut p, &state, i + 1, body);
        t.results.push(h.results.id_all().unwrap().to_string());
        t.states.push(h.state.id_all().unwrap().to_string());
        t.outputs
            .push(h.results.get_text("output").unwrap_or("").to_string());
        state = h.state;
    }
    t
}

#[test]
fn restored_at_every_slot_equals_never_stopped() {
    let a = run(false);
    let b = run(true);
    for i in 0..a.results.len() {
        assert_eq!(a.outputs[i], b.outputs[i], "output of slot {}", i + 1);
        assert_eq!(a.results[i], b.results[i], "results of slot {}", i + 1);
        assert_eq!(a.states[i], b.states[i], "state of slot {}", i + 1);
        assert_eq!(a.snapshots[i], b.snapshots[i], "heap before slot {}", i + 1);
    }
    // The script really used its globals, upvalues and run-time handlers.
    assert!(
        a.outputs[0].starts_with("step\t1\t1\t1\t1\t1\t1\tmeta:x\t1\tHI!\n"),
        "{}",
        a.outputs[0]
    );
    assert!(a.outputs[0].contains("-7=minus seven;1=one;2.5=two and a half;true=yes"));
    assert_eq!(a.outputs[4], "learned\tHello\t2\t2\t2\t2\n");
    assert_eq!(a.outputs[8], "step\t3\t3\t3\t3\t3\t3\tmeta:x\t3\tHI!\n-7=minus seven;1=one;2.5=two and a half;true=yes\nsame state table\ttrue\n");
    assert_eq!(a.outputs[10], "learned\tHello\t3\t3\t3\t3\n");
    // The failed slot kept its in-place state change and dropped its outbox.
    assert_eq!(a.outputs[7], "about to fail\n");
    // Re-learning Hello replaced the handler with a fresh closure.
    assert_eq!(a.outputs[12], "learned\tHello\t1\t1\t3\t3\n");
    assert_eq!(a.outputs[13], "globals\td\to\n");
    // A global holding the state table still holds it after a restore.
    assert!(
        b.outputs[14].ends_with("same state table\ttrue\n"),
        "{}",
        b.outputs[14]
    );
}

#[test]
fn the_same_heap_gives_the_same_bytes() {
    let (p1, _) = LuaProcess::init(&process(), LuaLimits::default()).unwrap();
    let (p2, _) = LuaProcess::init(&process(), LuaLimits::default()).unwrap();
    let s1 = p1.snapshot().unwrap();
    let s2 = p2.snapshot().unwrap();
    assert_eq!(s1, s2);
    assert_eq!(s1.id_all().unwrap(), s2.id_all().unwrap());
    // And a restored heap snapshots to the same bytes again.
    let r = LuaProcess::restore(
        &heap_of(&s1),
        s1.get_message("state").unwrap(),
        LuaLimits::default(),
    )
    .unwrap();
    assert_eq!(r.snapshot().unwrap(), s1);
}

#[test]
fn restore_does_not_rerun_the_script() {
    let script = r#"
      Runs = (Runs or 0) + 1
      function run(state) print(Runs) end
    "#;
    let (p, s) = LuaProcess::init(&msg! { "script" => script }, LuaLimits::default()).unwrap();
    let snap = p.snapshot().unwrap();
    let mut r = LuaProcess::restore(&heap_of(&snap), &s, LuaLimits::default()).unwrap();
    let n = node();
    let h = r
        .handle("run", &s, &msg! { "slot" => 1 }, PID, n.address())
        .unwrap()
        .unwrap();
    assert_eq!(h.results.get_text("output"), Some("1\n"));
}

#[test]
fn shared_upvalues_stay_shared_after_restore() {
    let script = r#"
      local n = 0
      function inc() n = n + 1 end
      function get() return n end
      function run(state) inc() inc() print(get()) end
    "#;
    let (p, s) = LuaProcess::init(&msg! { "script" => script }, LuaLimits::default()).unwrap();
    let snap = p.snapshot().unwrap();
    let mut r = LuaProcess::restore(&heap_of(&snap), &s, LuaLimits::default()).unwrap();
    let n = node();
    let h = r
        .handle("run", &s, &msg! { "slot" => 1 }, PID, n.address())
        .unwrap()
        .unwrap();
    // Unshared, get() would still see 0.
    assert_eq!(h.results.get_text("output"), Some("2\n"));
}

fn snapshot_error(script: &str) -> LuaError {
    let (p, _) = LuaProcess::init(&msg! { "script" => script }, LuaLimits::default()).unwrap();
    p.snapshot().unwrap_err()
}

#[test]
fn unpersistable_values_fail_the_snapshot_with_a_typed_error() {
    for script in [
        "Co = coroutine.create(function() coroutine.yield() end) coroutine.resume(Co)",
        "Iter = ipairs({})",
        "Gm = string.gmatch('a b', '%a')",
        "T = {[{}] = 1}",
        "Mt = {} T = setmetatable({}, Mt) Mt.__mode = 'k'",
    ] {
        let e = snapshot_error(script);
        assert!(matches!(e, LuaError::Unpersistable(_)), "{script}: {e:?}");
        assert_eq!(e.code(), "lua-unpersistable");
    }
}

#[test]
fn malformed_heaps_are_typed_errors() {
    let (p, s) = LuaProcess::init(&process(), LuaLimits::default()).unwrap();
    let heap = heap_of(&p.snapshot().unwrap());
    for bad in [
        Vec::new(),
        b"not a heap".to_vec(),
        heap[..heap.len() / 2].to_vec(),
        {
            let mut h = heap.clone();
            h.push(0);
            h
        },
    ] {
        let e = LuaProcess::restore(&bad, &s, LuaLimits::default()).unwrap_err();
        assert!(matches!(e, LuaError::BadSnapshot(_)), "{e:?}");
    }
    // Corrupting every byte in turn never panics.
    for i in (0..heap.len()).step_by(7) {
        let mut h = heap.clone();
        h[i] ^= 0x5a;
        let _ = LuaProcess::restore(&h, &s, LuaLimits::default());
    }
}

#[test]
fn restore_without_heap_runs_the_script_and_installs_the_state() {
    let script = "function run(state) state.n = state.n + 1 end";
    let state = msg! { "n" => 10 };
    let mut p = LuaProcess::restore_without_heap(
        &msg! { "script" => script },
        &state,
        LuaLimits::default(),
    )
    .unwrap();
    let n = node();
    let h = p
        .handle("run", &state, &msg! { "slot" => 1 }, PID, n.address())
        .unwrap()
        .unwrap();
    assert_eq!(h.state.get("n"), Some(&Value::Int(11)));
}
