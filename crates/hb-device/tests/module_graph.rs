//! The module graph of the crate stays acyclic (apart from the one knot of
//! mutually recursive types), and `keys` stays a leaf.
//!
//! An edge `a → b` is a code reference from `src/a.rs` to module `b`
//! (`use crate::b…`, `crate::b::…`); comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `Device::call` takes a `Context`, a `Context` carries the
/// `DeviceRegistry`, and the registry holds `Arc<dyn Device>`: three types
/// that refer to each other, each in its own module. This is the one cycle
/// allowed.
const TYPE_KNOT: [&str; 3] = ["context", "device", "registry"];

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        modules.insert(name, text);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (name, text) in &modules {
        let mut edges = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            // `use crate::{a, b::c}` as well as `crate::a::x`.
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let group = rest.strip_prefix('{').unwrap_or(rest);
                let end = group.find('}').unwrap_or(group.len());
                let targets: Vec<&str> = if rest.starts_with('{') {
                    group[..end].split(',').collect()
                } else {
                    vec![rest]
                };
                for t in targets {
                    let t = t.trim();
                    let module: String = t
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if names.contains(&module) && &module != name {
                        edges.insert(module);
                    }
                }
            }
        }
        graph.insert(name.clone(), edges);
    }
    graph.remove("lib");
    graph
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for next in graph.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn module_graph_keys_is_a_leaf() {
    let graph = graph();
    assert!(graph["keys"].is_empty(), "keys → {:?}", graph["keys"]);
    assert!(graph["guard"].is_empty(), "guard → {:?}", graph["guard"]);
}

#[test]
fn module_graph_has_no_cycle_but_the_type_knot() {
    let graph = graph();
    let mut cyclic: Vec<&str> = graph
        .keys()
        .filter(|m| reaches(&graph, m, m))
        .map(String::as_str)
        .collect();
    cyclic.sort();
    assert_eq!(cyclic, TYPE_KNOT, "modules on a cycle; graph: {graph:#?}");
    // The registry knows no device in particular.
    for device in ["message_device", "stack", "resolve"] {
        assert!(
            !reaches(&graph, "registry", device),
            "registry reaches {device}; graph: {graph:#?}"
        );
    }
}
