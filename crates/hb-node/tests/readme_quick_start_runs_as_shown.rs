//! The README's quick-start session, run as written against a real
//! `hb serve`: every `$ ` line of the block after the
//! `<!-- quick-start-session -->` marker runs, in order, in one bash
//! session, in a directory laid out like a checkout after the README's
//! first set-up command (`examples/` and `target/release/hb`, here the
//! test's own build of `hb`). Every command must succeed and print exactly
//! the lines the README shows, IDs aside (keys are random, so every
//! 43-character ID reads as `<id>` on both sides).

mod cli_support;

use std::process::Command;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
const MARKER: &str = "<!-- quick-start-session -->";
/// Printed by the session script before each command's output.
const SEPARATOR: &str = "\u{1e}command";

/// One command of the session and the lines it prints.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    command: String,
    output: Vec<String>,
}

/// The session block of the README.
fn session(readme: &str) -> anyhow::Result<Vec<Step>> {
    let at = readme
        .find(MARKER)
        .ok_or_else(|| anyhow::anyhow!("README.md has no {MARKER}"))?;
    let rest = &readme[at + MARKER.len()..];
    let open = rest
        .find("```console\n")
        .ok_or_else(|| anyhow::anyhow!("a console block follows the marker"))?;
    let block = &rest[open + "```console\n".len()..];
    let close = block
        .find("\n```")
        .ok_or_else(|| anyhow::anyhow!("the console block is closed"))?;
    let mut steps: Vec<Step> = Vec::new();
    for line in block[..close].lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                output: Vec::new(),
            });
        } else {
            steps
                .last_mut()
                .ok_or_else(|| anyhow::anyhow!("output before the first command: {line:?}"))?
                .output
                .push(line.to_string());
        }
    }
    Ok(steps)
}

/// Every 43-character base64url token (an ID or address) as `<id>`.
fn normalise(line: &str) -> String {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::new();
    let mut token = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if is_id_char(c) {
            token.push(c);
            continue;
        }
        if token.len() == 43 {
            out.push_str("<id>");
        } else {
            out.push_str(&token);
        }
        token.clear();
        out.push(c);
    }
    out.pop();
    out
}

#[test]
fn the_quick_start_session_prints_what_the_readme_shows() -> anyhow::Result<()> {
    let steps = session(&std::fs::read_to_string(README)?)?;
    assert!(steps.len() >= 8, "the session has its commands: {steps:?}");
    let data = tempfile::tempdir()?;
    let node = cli_support::Serve::start(data.path());
    let url = node.url.clone();

    // A checkout's layout after `cargo run --release`.
    let checkout = tempfile::tempdir()?;
    std::fs::create_dir_all(checkout.path().join("target/release"))?;
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_hb"),
        checkout.path().join("target/release/hb"),
    )?;
    std::os::unix::fs::symlink(EXAMPLES, checkout.path().join("examples"))?;
    let mut script = String::from("shopt -s expand_aliases\nset -e\n");
    for step in &steps {
        script.push_str(&format!("echo '{SEPARATOR}'\n{}\n", step.command));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(checkout.path())
        .env("HB_NODE", &url)
        .output()?;
    node.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the session fails: {stderr}\n{stdout}"
    );
    let printed: Vec<&str> = stdout.split(&format!("{SEPARATOR}\n")).skip(1).collect();
    assert_eq!(printed.len(), steps.len(), "every command ran: {stdout}");
    for (step, got) in steps.iter().zip(printed) {
        let want: Vec<String> = step.output.iter().map(|l| normalise(l)).collect();
        let got: Vec<String> = got.lines().map(normalise).collect();
        assert_eq!(got, want, "`{}` prints what the README shows", step.command);
    }
    // The key `hb keygen` made is the client's, in the session's directory.
    assert!(checkout.path().join("hb-client.key").exists());
    Ok(())
}

#[test]
fn ids_are_normalised_and_nothing_else() {
    assert_eq!(
        normalise("ok: process GjH9fiZfbHQOQqu2H8JjHI-wYEbhk-uzin5cOet_lAQ: 4 slots"),
        "ok: process <id>: 4 slots"
    );
    assert_eq!(
        normalise("     2  -AwBDNUgGlMgjkhdgPuw8nfPmOG465iZHHivc2qAaOg  action=Inc"),
        "     2  <id>  action=Inc"
    );
    // 42 and 44 characters are not IDs.
    let short = "a".repeat(42);
    let long = "a".repeat(44);
    assert_eq!(normalise(&short), short);
    assert_eq!(normalise(&long), long);
}
