//! The `eve-node` command's errors: a bad configuration stops `run` with one line that names
//! the field and what is allowed; `kv` against a cluster that does not answer fails with one
//! line and a non-zero exit; `init` refuses sizes that do not fit and a directory in use.

use std::path::{Path, PathBuf};
use std::process::Command;

fn eve_node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eve-node"))
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eve-cli-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn init(dir: &Path, extra: &[&str]) -> std::process::Output {
    eve_node()
        .args(["init", "--out"])
        .arg(dir)
        .args(["--base-port", "47400"])
        .args(extra)
        .output()
        .unwrap()
}

/// Runs `eve-node run` on node-0.toml after `edit` changed it; returns the error line.
fn run_with(edit: impl FnOnce(String) -> String) -> String {
    let dir = temp_dir("run");
    assert!(init(&dir, &[]).status.success());
    let path = dir.join("node-0.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    let output = eve_node()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success(), "a bad configuration stops run");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    lines[0].to_owned()
}

#[test]
fn a_setting_out_of_range_is_named_with_what_is_allowed() {
    let line = run_with(|t| {
        t.replace(
            "[cluster.settings]",
            "[cluster.settings]\npipeline_depth = 0",
        )
    });
    assert!(
        line.contains("cluster.settings.pipeline_depth = 0") && line.contains("allowed 1 ..= 64"),
        "{line}"
    );
}

#[test]
fn an_unknown_field_is_named() {
    let line = run_with(|t| t.replace("[app]", "[app]\nthreds = 4"));
    assert!(line.contains("threds") && line.contains("line "), "{line}");
}

#[test]
fn a_node_name_that_names_no_node_is_refused() {
    let line = run_with(|t| t.replace("replica-2 = ", "replica-two = "));
    assert!(
        line.contains("cluster.nodes") && line.contains("replica-two"),
        "{line}"
    );
}

#[test]
fn a_fault_threshold_that_does_not_fit_is_refused() {
    let line = run_with(|t| t.replace("r = 0", "r = 2"));
    assert!(line.contains("cluster.r"), "{line}");
}

#[test]
fn a_missing_certificate_file_is_named() {
    let line = run_with(|t| t.replace("cert = \"replica-0.pem\"", "cert = \"nowhere.pem\""));
    assert!(
        line.contains("replica.cert") && line.contains("nowhere.pem"),
        "{line}"
    );
}

#[test]
fn init_refuses_sizes_that_do_not_fit_and_a_directory_in_use() {
    let dir = temp_dir("init");
    let output = init(&dir, &["--u", "1", "--replicas", "4"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("needs 3 execution replicas"), "{stderr}");
    assert!(init(&dir, &[]).status.success());
    let again = init(&dir, &[]);
    assert!(
        !again.status.success(),
        "a directory holding a cluster is refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kv_against_a_cluster_that_does_not_answer_fails_in_one_line() {
    let dir = temp_dir("kv");
    assert!(init(&dir, &[]).status.success());
    let output = eve_node()
        .args(["kv", "--timeout-ms", "300", "--config"])
        .arg(dir.join("client-1.toml"))
        .args(["get", "a"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
