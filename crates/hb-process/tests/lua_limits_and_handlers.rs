//! SPEC §6.10 "Results" (limits end one slot only), "Handling key k"
//! (aos-style Handlers), "Message tables and globals" (`from` cannot be
//! spoofed) and "Sandbox and determinism" (two fresh VMs agree byte for
//! byte).

use hb_message::{msg, Message, NodeKey, Value};
use hb_process::lua::{Handled, LuaLimits, LuaProcess};

const PID: &str = "process-id-0000000000000000000000000000000";

fn node() -> NodeKey {
    NodeKey::from_seed(&[7; 32])
}

fn compute(p: &mut LuaProcess, state: &Message, slot: i64, body: Message) -> Handled {
    let n = node();
    p.handle(
        "compute",
        state,
        &msg! { "slot" => slot, "body" => body },
        PID,
        n.address(),
    )
    .expect("handle")
    .expect("compute is always handled")
}

fn output(h: &Handled) -> &str {
    h.results.get_text("output").expect("output is text")
}

fn error_code(h: &Handled) -> Option<&str> {
    h.results.get_path("error/code").and_then(|v| v.as_text())
}

fn outbox_len(h: &Handled) -> usize {
    h.results
        .get("outbox")
        .and_then(|v| v.as_list())
        .map_or(0, |l| l.len())
}

const LIMITS_SCRIPT: &str = r#"
function init() return {count = 0} end
Handlers.add("work", {action = "work"}, function(msg, state)
  state.count = state.count + 1
  print("working " .. state.count)
  Send({target = "x"})
  if msg.kind == "loop" then while true do end end
  if msg.kind == "caught-loop" then
    for i = 1, 1000 do pcall(function() while true do end end) end
  end
  if msg.kind == "alloc" then local s = string.rep("x", 1 << 30) end
  if msg.kind == "grow" then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1 << 20) .. i end end
  if msg.kind == "caught-alloc" then
    local ok = pcall(function() local s = string.rep("x", 1 << 30) end)
    print("swallowed", ok)
  end
  if msg.kind == "recurse" then local function f(n) return f(n + 1) + 1 end f(1) end
  if msg.kind == "error" then error("boom") end
  print("done")
end)
"#;

fn limited() -> LuaLimits {
    LuaLimits {
        max_instructions: 5_000_000,
        max_memory_bytes: 64 * 1024 * 1024,
    }
}

#[test]
fn each_limit_fails_one_slot_and_later_slots_run() {
    let (mut p, mut s) = LuaProcess::init(&msg! { "script" => LIMITS_SCRIPT }, limited()).unwrap();
    let cases = [
        ("loop", Some("lua-instruction-limit")),
        ("caught-loop", Some("lua-instruction-limit")),
        ("alloc", Some("lua-memory-limit")),
        ("grow", Some("lua-memory-limit")),
        ("caught-alloc", Some("lua-memory-limit")),
        ("recurse", Some("lua-error")),
        ("error", Some("lua-error")),
        ("none", None),
    ];
    for (i, (kind, code)) in cases.iter().enumerate() {
        let slot = i as i64 + 1;
        let h = compute(
            &mut p,
            &s,
            slot,
            msg! { "action" => "work", "kind" => *kind },
        );
        assert_eq!(
            error_code(&h),
            *code,
            "{kind}: {:?}",
            h.results.get_path("error/message")
        );
        // The output so far is kept, and in-place state changes remain.
        assert!(
            output(&h).starts_with(&format!("working {slot}\n")),
            "{kind}: {}",
            output(&h)
        );
        assert_eq!(h.state.get_int("count"), Some(slot), "{kind}");
        if code.is_some() {
            assert_eq!(outbox_len(&h), 0, "{kind}: the outbox is discarded");
            assert!(!output(&h).contains("done"));
            assert!(
                !output(&h).contains("swallowed"),
                "{kind}: a limit cannot be caught"
            );
        } else {
            assert_eq!(outbox_len(&h), 1);
            assert_eq!(output(&h), format!("working {slot}\ndone\n"));
        }
        s = h.state;
    }
}

#[test]
fn instruction_count_is_per_slot() {
    // Each slot runs about 40% of the limit (two instructions per turn), five
    // slots twice the limit: no slot fails, because the count restarts with
    // every slot.
    let script = r#"
      function run() local x = 0 for i = 1, 1000000 do x = x + i end print(x) end
      function run3() local x = 0 for i = 1, 3000000 do x = x + i end print(x) end
    "#;
    let (mut p, s) = LuaProcess::init(&msg! { "script" => script }, limited()).unwrap();
    let n = node();
    for slot in 1..=5 {
        let h = p
            .handle(
                "run",
                &s,
                &msg! { "slot" => slot, "body" => Message::new() },
                PID,
                n.address(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(error_code(&h), None, "slot {slot}");
    }
    // Three times the work in one slot is over the limit.
    let h = p
        .handle(
            "run3",
            &s,
            &msg! { "slot" => 6, "body" => Message::new() },
            PID,
            n.address(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(error_code(&h), Some("lua-instruction-limit"));
}

#[test]
fn an_infinite_loop_in_init_is_a_typed_init_error() {
    let e = LuaProcess::init(&msg! { "script" => "while true do end" }, limited()).unwrap_err();
    assert_eq!(e.code(), "lua-instruction-limit");
}

const HANDLERS_SCRIPT: &str = r#"
Handlers.add("first", {Action = "Ping"}, function(msg, state)
  print("first " .. msg.Action)
end)
Handlers.add("second", function(msg) return msg.action == "Ping" end, function(msg, state)
  print("second")
  if msg.stop then return "break" end
end)
Handlers.add("third", {action = "Ping"}, function(msg, state)
  print("third")
end)
Handlers.add("other", {action = "Other"}, function(msg, state) print("other") end)
Handlers.add("replace-me", {action = "Replace"}, function(msg, state)
  Handlers.add("first", {action = "Ping"}, function() print("first replaced") end)
end)
"#;

#[test]
fn handlers_run_in_order_until_break_and_replace_in_place() {
    let (mut p, s) =
        LuaProcess::init(&msg! { "script" => HANDLERS_SCRIPT }, LuaLimits::default()).unwrap();
    let h = compute(&mut p, &s, 1, msg! { "action" => "Ping" });
    assert_eq!(output(&h), "first Ping\nsecond\nthird\n");
    let h = compute(
        &mut p,
        &h.state,
        2,
        msg! { "action" => "Ping", "stop" => true },
    );
    assert_eq!(output(&h), "first Ping\nsecond\n");
    let h = compute(&mut p, &h.state, 3, msg! { "action" => "Other" });
    assert_eq!(output(&h), "other\n");
    let h = compute(&mut p, &h.state, 4, msg! { "action" => "nothing" });
    assert_eq!(output(&h), "");
    assert_eq!(error_code(&h), None);
    // Re-adding "first" replaces it at its position, not at the end.
    let h = compute(&mut p, &h.state, 5, msg! { "action" => "Replace" });
    let h = compute(&mut p, &h.state, 6, msg! { "action" => "Ping" });
    assert_eq!(output(&h), "first replaced\nsecond\nthird\n");
}

#[test]
fn a_global_compute_function_takes_precedence_over_handlers() {
    let script = r#"
      Handlers.add("h", {}, function() print("handler") end)
      function compute(state, a) print("global " .. a.body.x) end
    "#;
    let (mut p, s) = LuaProcess::init(&msg! { "script" => script }, LuaLimits::default()).unwrap();
    let h = compute(&mut p, &s, 1, msg! { "x" => "y" });
    assert_eq!(output(&h), "global y\n");
}

const FROM_SCRIPT: &str = r#"
Handlers.add("who", {}, function(msg) print(tostring(msg.from), tostring(msg.From)) end)
"#;

#[test]
fn from_cannot_be_spoofed() {
    let (mut p, s) =
        LuaProcess::init(&msg! { "script" => FROM_SCRIPT }, LuaLimits::default()).unwrap();
    let user = NodeKey::from_seed(&[9; 32]);
    let n = node();

    // Unsigned: a claimed `from` is removed.
    let h = compute(&mut p, &s, 1, msg! { "from" => "someone-else" });
    assert_eq!(output(&h), "nil\tnil\n");

    // Signed by a user: the committer, whatever `from` claims.
    let body = msg! { "from" => "someone-else", "from-process" => "also-fake" }
        .commit(&user, None)
        .unwrap();
    let h = compute(&mut p, &s, 2, body);
    assert_eq!(output(&h), format!("{0}\t{0}\n", user.address()));

    // Signed by the node (a pushed message): its from-process.
    let body = msg! { "from" => "someone-else", "from-process" => "pid-of-sender" }
        .commit(&n, None)
        .unwrap();
    let h = compute(&mut p, &s, 3, body);
    assert_eq!(output(&h), "pid-of-sender\tpid-of-sender\n");
}

const DETERMINISM_SCRIPT: &str = r#"
function init(process) return {balances = {}, log = {}} end
Handlers.add("deposit", {action = "Deposit"}, function(msg, state)
  local who = msg.who
  state.balances[who] = (state.balances[who] or 0) + tonumber(msg.amount)
  local t = {}
  for k, v in pairs(state.balances) do t[#t + 1] = k .. "=" .. v end
  print(table.concat(t, ","), {}, print)
  state.log[#state.log + 1] = who
  local set = {}
  for i = 1, 50 do set["k" .. (i * 7919 % 101)] = i; set[i * 0.5] = i end
  local order = {}
  for k in pairs(set) do order[#order + 1] = tostring(k) end
  state.order = table.concat(order, " ")
  Send({target = who, data = "deposited", amount = msg.amount})
end)
"#;

fn run_determinism() -> Vec<(String, String)> {
    let (mut p, mut s) = LuaProcess::init(
        &msg! { "script" => DETERMINISM_SCRIPT },
        LuaLimits::default(),
    )
    .unwrap();
    let mut ids = Vec::new();
    for (slot, who) in ["carol", "alice", "bob", "alice", "dave"]
        .iter()
        .enumerate()
    {
        let h = compute(
            &mut p,
            &s,
            slot as i64 + 1,
            msg! { "action" => "Deposit", "who" => *who, "amount" => Value::Text(format!("{}", slot * 3 + 1)) },
        );
        assert_eq!(error_code(&h), None);
        ids.push((
            h.results.id_all().unwrap().to_string(),
            h.state.id_all().unwrap().to_string(),
        ));
        s = h.state;
    }
    ids
}

#[test]
fn the_same_script_in_two_fresh_vms_gives_identical_results() {
    let a = run_determinism();
    let b = run_determinism();
    assert_eq!(a, b);
    // And the results are not trivially equal from slot to slot.
    assert_ne!(a[0], a[1]);
}
