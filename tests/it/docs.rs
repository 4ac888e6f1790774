//! The operator docs cannot drift from the binary: every `lapor-node …` command written in
//! README.md and certs/README.md names subcommands the binary has and flags those subcommands
//! take (checked against `lapor-node <subcommand> --help`).

use std::collections::HashMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");

/// `lapor-node <path> --help`, cached.
fn help<'a>(
    cache: &'a mut HashMap<Vec<String>, Option<String>>,
    path: &[String],
) -> Option<&'a str> {
    cache
        .entry(path.to_vec())
        .or_insert_with(|| {
            let out = Command::new(BIN).args(path).arg("--help").output().unwrap();
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .as_deref()
}

/// The subcommands a help text lists.
fn subcommands(help: &str) -> Vec<String> {
    let Some(start) = help.find("Commands:") else {
        return Vec::new();
    };
    help[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every command written after `lapor-node` in `text`: the words up to the end of the code
/// span, the line, a comment or a table cell.
fn commands(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        // A drawing of processes (`lapor-node   lapor-node …`), not a command.
        if line.contains("lapor-node   ") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("lapor-node ") {
            let after = &rest[i + "lapor-node ".len()..];
            // `journalctl -u lapor-node`, `systemctl … lapor-node`: the unit, not a command.
            let before = &rest[..i];
            if before.ends_with("-u ") || before.contains("systemctl") {
                rest = after;
                continue;
            }
            let end = after.find(['`', '#', '|', ')']).unwrap_or(after.len());
            let words: Vec<String> = after[..end].split_whitespace().map(str::to_owned).collect();
            if !words.is_empty() {
                out.push(words);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_command_in_the_operator_docs_exists_with_its_flags() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cache = HashMap::new();
    let mut checked = 0;
    let mut problems = Vec::new();
    for file in ["README.md", "certs/README.md"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for words in commands(&text) {
            let mut words = words.into_iter().peekable();
            let mut path: Vec<String> = Vec::new();
            let mut flags = Vec::new();
            while let Some(w) = words.next() {
                if w == "--config" {
                    words.next();
                    continue;
                }
                if let Some(flag) = w.strip_prefix("--") {
                    flags.push(flag.split('=').next().unwrap_or_default().to_owned());
                    continue;
                }
                let Some(h) = help(&mut cache, &path) else {
                    break;
                };
                if subcommands(h).contains(&w) {
                    path.push(w);
                } else if path.is_empty() {
                    problems.push(format!("{file}: `lapor-node {w}`: no such command"));
                    break;
                }
            }
            let Some(h) = help(&mut cache, &path) else {
                problems.push(format!(
                    "{file}: `lapor-node {}` has no help",
                    path.join(" ")
                ));
                continue;
            };
            for f in flags {
                if f != "help" && !h.contains(&format!("--{f}")) {
                    problems.push(format!(
                        "{file}: `lapor-node {}` has no flag --{f}",
                        path.join(" ")
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} commands found: the parser lost its way"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
