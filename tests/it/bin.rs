//! Running the built `lapor-node` binary as an operator would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");

/// `lapor-node ARGS…` with no `RUST_LOG` or `LAPOR_CONFIG` from the test's environment.
pub(crate) fn lapor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LAPOR_CONFIG")
        .output()
        .unwrap()
}

/// `lapor-node ARGS…`, succeeding; its output.
pub(crate) fn ok(args: &[&str]) -> String {
    let out = lapor(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

/// Standard output and error together.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `lapor-node serve --config CONFIG` until it says it listens: the child (its log drained
/// from then on, so it never writes into a closed pipe) and its API port.
pub(crate) fn serve(config: &Path) -> (Child, u16) {
    serve_with(config, &[])
}

/// [`serve`] with more environment variables.
pub(crate) fn serve_with(config: &Path, env: &[(&str, &str)]) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("LAPOR__LOG__FORMAT", "json")
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    for line in lines.by_ref().take(200) {
        let line = line.unwrap();
        if line.contains("node listening") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            port = v["fields"]["port"].as_u64();
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let port = port.unwrap_or_else(|| panic!("{} did not start", config.display()));
    (child, u16::try_from(port).unwrap())
}
