//! SPEC §6.10 "Script and VM", "Sandbox and determinism", "Conversion" and
//! "Results": the Lua engine as a library.

use hb_message::{msg, Message, NodeKey, Value};
use hb_process::lua::{Handled, LuaError, LuaLimits, LuaProcess};

const PID: &str = "process-id-0000000000000000000000000000000";

fn node() -> NodeKey {
    NodeKey::from_seed(&[7; 32])
}

fn start(script: &str) -> (LuaProcess, Message) {
    LuaProcess::init(&msg! { "script" => script }, LuaLimits::default()).expect("init")
}

fn assignment(slot: i64, body: Message) -> Message {
    msg! { "slot" => slot, "body" => body }
}

/// Calls the global `run(state, assignment)` defined by the test scripts.
fn call(p: &mut LuaProcess, state: &Message, body: Message) -> Handled {
    let n = node();
    p.handle("run", state, &assignment(1, body), PID, n.address())
        .expect("handle")
        .expect("run is defined")
}

fn output(h: &Handled) -> String {
    h.results
        .get_text("output")
        .expect("output is text")
        .to_string()
}

fn error_code(h: &Handled) -> Option<String> {
    h.results
        .get_path("error/code")
        .and_then(|v| v.as_text())
        .map(str::to_string)
}

/// Runs `body` (Lua statements) as the body of `run`, returning the slot.
fn eval(body: &str) -> Handled {
    let script = format!("function run(state, a)\n{body}\nend");
    let (mut p, s) = start(&script);
    call(&mut p, &s, Message::new())
}

#[test]
fn absent_libraries_are_absent() {
    for name in [
        "os",
        "io",
        "debug",
        "package",
        "require",
        "dofile",
        "loadfile",
        "collectgarbage",
    ] {
        let h = eval(&format!("print(type({name}))"));
        assert_eq!(output(&h), "nil\n", "{name} must be absent");
    }
    let h = eval("print(type(math.random), type(math.randomseed), type(string.dump))");
    assert_eq!(output(&h), "nil\tnil\tnil\n");
}

#[test]
fn present_libraries_are_present() {
    let h = eval("print(type(string.rep), type(table.concat), type(math.floor), type(utf8.char), type(coroutine.create))");
    assert_eq!(
        output(&h),
        "function\tfunction\tfunction\tfunction\tfunction\n"
    );
}

#[test]
fn load_refuses_binary_chunks_and_accepts_text() {
    // A binary chunk starts with ESC "Lua"; string.dump is absent, so build
    // the header by hand.
    let h = eval(
        r#"local f, err = load("\27Lua\83\0", "x", "b")
           print(f == nil, (string.find(err, "binary", 1, true)) ~= nil)
           local g = load("return 1 + 1")
           print(g())"#,
    );
    assert_eq!(output(&h), "true\ttrue\n2\n");
    // Through a reader function as well.
    let h = eval(
        r#"local parts = {"\27Lua", "\83\0"}
           local i = 0
           local f, err = load(function() i = i + 1 return parts[i] end)
           print(f == nil)"#,
    );
    assert_eq!(output(&h), "true\n");
}

#[test]
fn pairs_and_next_follow_the_deterministic_order() {
    let h = eval(
        r#"local t = {}
           t.b = 1; t[true] = 1; t[3] = 1; t[2.5] = 1; t.a = 1; t[false] = 1; t[-1] = 1; t[0.5] = 1; t["A"] = 1; t[10] = 1
           local out = {}
           for k in pairs(t) do out[#out + 1] = tostring(k) end
           print(table.concat(out, " "))
           local out2, k = {}, next(t)
           while k ~= nil do out2[#out2 + 1] = tostring(k); k = next(t, k) end
           print(table.concat(out2, " "))"#,
    );
    let expected = "-1 3 10 0.5 2.5 A a b false true";
    assert_eq!(output(&h), format!("{expected}\n{expected}\n"));
}

#[test]
fn pairs_raises_on_unorderable_keys() {
    let h = eval("local t = {[{}] = 1} for k in pairs(t) do end");
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
    let msg = h
        .results
        .get_path("error/message")
        .and_then(|v| v.as_text())
        .unwrap();
    assert!(msg.contains("key of type table"), "{msg}");
    let h = eval("local t = {[print] = 1} print(next(t))");
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
}

#[test]
fn pairs_skips_keys_cleared_during_iteration() {
    let h = eval(
        r#"local t = {a = 1, b = 2, c = 3}
           local seen = {}
           for k in pairs(t) do seen[#seen + 1] = k; t.b = nil end
           print(table.concat(seen, ","))"#,
    );
    assert_eq!(output(&h), "a,c\n");
    // Clearing the current key while traversing with next, as Lua allows.
    let h = eval(
        r#"local t = {a = 1, b = 2, [1] = 3}
           local k = next(t)
           local seen = {}
           while k ~= nil do seen[#seen + 1] = tostring(k) t[k] = nil k = next(t, k) end
           print(table.concat(seen, ","), next(t))"#,
    );
    assert_eq!(output(&h), "1,a,b\tnil\n");
}

#[test]
fn tostring_hides_addresses() {
    let h = eval(
        r#"print(tostring({}), tostring(print), tostring(function() end), tostring(coroutine.create(function() end)))
           print({}, string.format("%s|%s", {}, print))
           print(tostring(setmetatable({}, {__tostring = function() return "custom" end})))
           print(1, 2.5, "x", nil, true, 0/0, -(0/0), 1/0)"#,
    );
    assert_eq!(
        output(&h),
        "table\tfunction\tfunction\tthread\ntable\ttable|function\ncustom\n1\t2.5\tx\tnil\ttrue\tnan\tnan\tinf\n"
    );
    assert!(!output(&h).contains("0x"));
}

#[test]
fn gc_and_weak_metatables_are_refused() {
    let h = eval("setmetatable({}, {__gc = function() end})");
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
    let h = eval("setmetatable({}, {__mode = 'k'})");
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
}

#[test]
fn init_without_script_is_lua_no_script() {
    let e = LuaProcess::init(&msg! { "type" => "Process" }, LuaLimits::default()).unwrap_err();
    assert_eq!(e, LuaError::NoScript);
    assert_eq!(e.code(), "lua-no-script");
}

#[test]
fn init_with_a_syntax_error_is_a_load_error() {
    let e = LuaProcess::init(&msg! { "script" => "function (" }, LuaLimits::default()).unwrap_err();
    assert!(matches!(e, LuaError::Load(_)), "{e:?}");
}

#[test]
fn init_with_a_runtime_error_fails_init() {
    let e =
        LuaProcess::init(&msg! { "script" => "error('boom')" }, LuaLimits::default()).unwrap_err();
    assert_eq!(e.code(), "lua-error");
}

#[test]
fn script_may_come_from_process_slash_script_or_data() {
    let def = msg! { "script" => "function init(p) return {name = p.Name} end" , "name" => "x"};
    let state_like = msg! { "process" => def.clone() };
    let (_, s) = LuaProcess::init(&state_like, LuaLimits::default()).unwrap();
    assert_eq!(s, msg! { "name" => "x" });
    let (_, s) = LuaProcess::init(
        &msg! { "data" => "function init() return {v = 1} end" },
        LuaLimits::default(),
    )
    .unwrap();
    assert_eq!(s, msg! { "v" => 1 });
}

#[test]
fn init_state_defaults_to_an_empty_message() {
    let (_, s) = start("x = 1");
    assert_eq!(s, Message::new());
}

#[test]
fn message_tables_are_case_insensitive() {
    let (mut p, s) =
        start("function run(state, a) print(a.body.Action, a.BODY.action, a.Body.Missing) end");
    let h = call(&mut p, &s, msg! { "action" => "Transfer" });
    assert_eq!(output(&h), "Transfer\tTransfer\tnil\n");
}

#[test]
fn unknown_key_is_not_found_and_compute_without_handlers_is_empty() {
    let (mut p, s) = start("x = 1");
    let n = node();
    assert!(p
        .handle(
            "other",
            &s,
            &assignment(1, Message::new()),
            PID,
            n.address()
        )
        .unwrap()
        .is_none());
    let h = p
        .handle(
            "compute",
            &s,
            &assignment(1, Message::new()),
            PID,
            n.address(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        h.results,
        msg! { "output" => "", "outbox" => Value::List(vec![]) }
    );
}

#[test]
fn returned_table_replaces_state_and_nil_keeps_it() {
    let (mut p, s) = start(
        r#"function init() return {n = 0} end
           function run(state, a)
             if a.body.replace then return {replaced = true} end
             state.n = state.n + 1
           end"#,
    );
    let h = call(&mut p, &s, Message::new());
    assert_eq!(h.state, msg! { "n" => 1 });
    let h2 = call(&mut p, &h.state, Message::new());
    assert_eq!(h2.state, msg! { "n" => 2 });
    let h3 = call(&mut p, &h2.state, msg! { "replace" => true });
    assert_eq!(h3.state, msg! { "replaced" => true });
}

#[test]
fn a_new_state_from_the_caller_is_installed() {
    let (mut p, _) = start("function run(state) state.n = (state.n or 0) + 1 end");
    let h = call(&mut p, &msg! { "n" => 41 }, Message::new());
    assert_eq!(h.state, msg! { "n" => 42 });
}

#[test]
fn ao_id_send_and_print() {
    let (mut p, s) = start(
        r#"function run(state, a)
             print("id", ao.id)
             print("two", "parts")
             Send({Target = "t1", Data = "hello"})
             Send({target = "t2"})
           end"#,
    );
    let h = call(&mut p, &s, Message::new());
    assert_eq!(output(&h), format!("id\t{PID}\ntwo\tparts\n"));
    let outbox = h.results.get("outbox").and_then(|v| v.as_list()).unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(
        outbox[0],
        Value::Message(msg! { "target" => "t1", "data" => "hello" })
    );
    assert_eq!(outbox[1], Value::Message(msg! { "target" => "t2" }));
}

fn convert_one(lua_expr: &str) -> Result<Value, String> {
    let (mut p, s) = start(&format!("function run(state) state.v = {lua_expr} end"));
    let h = call(&mut p, &s, Message::new());
    match error_code(&h) {
        None => Ok(h
            .state
            .get("v")
            .cloned()
            .unwrap_or(Value::Text("<absent>".into()))),
        Some(_) => Err(h
            .results
            .get_path("error/message")
            .and_then(|v| v.as_text())
            .unwrap()
            .to_string()),
    }
}

#[test]
fn lua_to_message_conversion() {
    assert_eq!(
        convert_one("{1, 2, 3}"),
        Ok(Value::List(vec![1.into(), 2.into(), 3.into()]))
    );
    assert_eq!(convert_one("{}"), Ok(Value::Message(Message::new())));
    assert_eq!(
        convert_one("{[1] = 'a', [3] = 'c'}"),
        Ok(Value::Message(msg! { "1" => "a", "3" => "c" }))
    );
    assert_eq!(
        convert_one("{Name = 'x', [2] = true}"),
        Ok(Value::Message(msg! { "name" => "x", "2" => true }))
    );
    assert_eq!(convert_one("'text'"), Ok(Value::Text("text".into())));
    assert_eq!(convert_one("'\\255\\0'"), Ok(Value::Bytes(vec![255, 0])));
    assert_eq!(convert_one("1.5"), Ok(Value::float(1.5).unwrap()));
    assert_eq!(convert_one("7"), Ok(Value::Int(7)));
    assert_eq!(convert_one("false"), Ok(Value::Bool(false)));
    assert_eq!(
        convert_one("{{a = 1}, {}}"),
        Ok(Value::List(vec![
            Value::Message(msg! { "a" => 1 }),
            Value::Message(Message::new())
        ]))
    );
}

#[test]
fn lua_to_message_conversion_errors() {
    for (expr, needle) in [
        ("print", "function"),
        ("coroutine.create(function() end)", "thread"),
        ("0/0", "non-finite"),
        ("1/0", "non-finite"),
        ("{[1.5] = 1}", "float"),
        ("{[true] = 1}", "boolean"),
        ("{[{}] = 1}", "table"),
        ("{Foo = 1, foo = 2}", "normalise"),
        ("{[1] = 1, ['1'] = 2}", "normalise"),
    ] {
        let err = convert_one(expr).expect_err(expr);
        assert!(err.contains(needle), "{expr}: {err}");
    }
    // A cycle.
    let (mut p, s) = start("function run(state) local t = {} t.self = t state.v = t end");
    let h = call(&mut p, &s, Message::new());
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
    assert!(h
        .results
        .get_path("error/message")
        .and_then(|v| v.as_text())
        .unwrap()
        .contains("cycle"));
    // The failed state conversion keeps the previous state message.
    assert_eq!(h.state, s);
}

#[test]
fn send_conversion_errors_are_lua_errors_at_the_call() {
    let h = eval("print('before') Send({f = print}) print('after')");
    assert_eq!(error_code(&h).as_deref(), Some("lua-error"));
    assert_eq!(output(&h), "before\n");
    let m = h
        .results
        .get_path("error/message")
        .and_then(|v| v.as_text())
        .unwrap();
    assert!(m.contains("Send") && m.contains("function"), "{m}");
    // A Send before the error is discarded with the failed slot.
    let h = eval("Send({a = 1}) error('x')");
    assert_eq!(
        h.results
            .get("outbox")
            .and_then(|v| v.as_list())
            .map(|l| l.len()),
        Some(0)
    );
}

#[test]
fn message_to_lua_conversion() {
    let (mut p, s) = start(
        r#"function run(state, a)
             local b = a.body
             print(type(b.text), type(b.bytes), math.type(b.int), math.type(b.float), type(b.flag), #b.list, b.list[2], b.nested.inner)
             state.echo = b
           end"#,
    );
    let body = msg! {
        "text" => "t", "bytes" => vec![1u8, 2], "int" => 3, "float" => Value::float(0.5).unwrap(),
        "flag" => true, "list" => Value::List(vec![1.into(), "two".into()]), "nested" => msg! { "inner" => "x" },
    };
    let h = call(&mut p, &s, body.clone());
    assert_eq!(
        output(&h),
        "string\tstring\tinteger\tfloat\tboolean\t2\ttwo\tx\n"
    );
    // Back to a message, text stays text and bytes stay bytes (not UTF-8
    // here? 01 02 is valid UTF-8, so it comes back as text).
    let echo = h.state.get_message("echo").unwrap();
    assert_eq!(echo.get("text"), Some(&Value::Text("t".into())));
    assert_eq!(echo.get("int"), Some(&Value::Int(3)));
    assert_eq!(
        echo.get("nested"),
        Some(&Value::Message(msg! { "inner" => "x" }))
    );
}

#[test]
fn the_globals_are_exactly_the_sandbox() {
    let h = eval(
        r#"local names = {}
           for k, v in pairs(_G) do names[#names + 1] = k .. ":" .. type(v) end
           print(table.concat(names, " "))
           local libs = {}
           for _, lib in ipairs({"string", "table", "math", "utf8", "coroutine"}) do
             local n = {}
             for k in pairs(_G[lib]) do n[#n + 1] = k end
             libs[#libs + 1] = lib .. "=" .. table.concat(n, ",")
           end
           print(table.concat(libs, "\n"))"#,
    );
    let out = output(&h);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Handlers:table Send:function _G:table _VERSION:string ao:table assert:function \
         coroutine:table error:function getmetatable:function ipairs:function load:function \
         math:table next:function pairs:function pcall:function print:function rawequal:function \
         rawget:function rawlen:function rawset:function run:function select:function \
         setmetatable:function string:table table:table tonumber:function tostring:function \
         type:function utf8:table xpcall:function"
    );
    let rest: Vec<&str> = lines.collect();
    assert!(!rest[0].contains("dump"), "{}", rest[0]);
    assert!(!rest[2].contains("random"), "{}", rest[2]);
    assert!(!out.contains("debug") && !out.contains("collectgarbage"));
}
