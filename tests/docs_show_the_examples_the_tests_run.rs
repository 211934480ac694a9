//! The examples in the docs are the ones the tests run: docs/processes.md
//! shows examples/lua/counter.lua verbatim (and the counter test and
//! `cargo run --example lua_counter` run that file).

#[test]
fn processes_md_shows_the_counter_script_verbatim() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/processes.md"))
        .expect("docs/processes.md is readable");
    let script = include_str!("../examples/lua/counter.lua");
    let block = format!("```lua\n{script}```");
    assert!(
        doc.contains(&block),
        "docs/processes.md must show examples/lua/counter.lua verbatim in a lua block"
    );
}
