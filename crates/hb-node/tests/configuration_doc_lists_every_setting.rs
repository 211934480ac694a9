//! docs/configuration.md agrees with the code: its settings table lists
//! exactly the settings of `hb_node::SETTINGS` (name, default, variable,
//! flag, type and meaning, in order), its example TOML files load through
//! the real loader, and its example error line is what `hb serve` prints.

use std::collections::BTreeMap;
use std::process::Command;

use hb_node::config::ValueKind;
use hb_node::{NodeConfig, SETTINGS};

fn doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md is readable")
}

/// A cell without its surrounding backticks.
fn cell(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix('`')
        .and_then(|t| t.strip_suffix('`'))
        .unwrap_or(t)
        .to_string()
}

/// The rows of the settings table: name, default, variable, flag, type,
/// meaning.
fn table(doc: &str) -> Vec<[String; 6]> {
    let mut lines = doc
        .lines()
        .skip_while(|l| !l.starts_with("| Setting | Default | Variable | Flag | Type | Meaning |"));
    assert!(lines.next().is_some(), "the settings table's header");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("|---")),
        "the table's separator"
    );
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<String> = l.trim().trim_matches('|').split('|').map(cell).collect();
            assert_eq!(cells.len(), 6, "six cells in {l:?}");
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[4].clone(),
                cells[5].clone(),
            ]
        })
        .collect()
}

fn kind(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Integer => "integer",
        ValueKind::Boolean => "boolean",
        ValueKind::Text => "string",
    }
}

/// The fenced blocks of `lang`.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    doc.split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_table_lists_exactly_the_settings_of_the_code() {
    let documented = table(&doc());
    let in_code: Vec<[String; 6]> = SETTINGS
        .iter()
        .map(|s| {
            [
                s.name.to_string(),
                s.default.to_string(),
                s.env.to_string(),
                s.flag.to_string(),
                kind(s.kind).to_string(),
                s.description.to_string(),
            ]
        })
        .collect();
    let names =
        |rows: &[[String; 6]]| -> Vec<String> { rows.iter().map(|r| r[0].clone()).collect() };
    let (doc_names, code_names) = (names(&documented), names(&in_code));
    let missing: Vec<_> = code_names
        .iter()
        .filter(|n| !doc_names.contains(n))
        .collect();
    let extra: Vec<_> = doc_names
        .iter()
        .filter(|n| !code_names.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "settings missing from the doc: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented settings the code lacks: {extra:?}"
    );
    for (d, c) in documented.iter().zip(&in_code) {
        assert_eq!(
            d, c,
            "the row of {} (name, default, variable, flag, type, meaning)",
            c[0]
        );
    }
    assert_eq!(documented.len(), in_code.len());
}

#[test]
fn the_example_files_load_through_the_real_loader() {
    let doc = doc();
    let examples = blocks(&doc, "toml");
    assert!(!examples.is_empty(), "the doc shows an example file");
    let none = BTreeMap::new();
    for example in &examples {
        NodeConfig::load(Some(example), &none, &none)
            .unwrap_or_else(|e| panic!("the example does not load: {e}\n{example}"));
    }
    let c = NodeConfig::load(Some(&examples[0]), &none, &none).expect("loads");
    assert_eq!(c.host.to_string(), "0.0.0.0");
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/hb"));
    assert!(c.require_signed);
    assert_eq!(c.process_cache_frequency, 10);
    assert_eq!(c.location_url(), "https://hb.example.org");
}

#[test]
fn the_example_error_line_is_what_hb_serve_prints() {
    let doc = doc();
    let shown = blocks(&doc, "text")
        .into_iter()
        .find(|b| b.starts_with("hb: setting"))
        .expect("the doc shows an error line");
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut hb = Command::new(env!("CARGO_BIN_EXE_hb"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HB_") {
            hb.env_remove(name);
        }
    }
    let out = hb
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("HB_PROCESS_CACHE_FREQUENCY", "0")
        .output()
        .expect("hb runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), shown);
}
