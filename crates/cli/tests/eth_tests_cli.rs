//! `blockstm eth-tests`: per-group and total counts, JSON, and clear errors on bad input.

use std::process::Command;

fn blockstm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blockstm"))
        .args(args)
        .env_remove("BLOCKSTM_ETH_TESTS")
        .output()
        .expect("run blockstm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_fixtures_and_zero_threads_are_errors() {
    let (ok, _, stderr) = blockstm(&["eth-tests"]);
    assert!(!ok && stderr.contains("BLOCKSTM_ETH_TESTS"), "{stderr}");
    let (ok, _, stderr) = blockstm(&["eth-tests", "--fixtures", "/nonexistent/blockstm"]);
    assert!(!ok && stderr.contains("/nonexistent/blockstm"), "{stderr}");
    let (ok, _, stderr) = blockstm(&["eth-tests", "--fixtures", ".", "--threads", "0"]);
    assert!(!ok && stderr.contains("at least 1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_group_runs_and_reports_counts_and_json() {
    let Some(dir) = std::env::var_os("BLOCKSTM_ETH_TESTS") else {
        eprintln!(
            "eth-tests CLI test skipped: set BLOCKSTM_ETH_TESTS to the ethereum-tests fixture directory"
        );
        return;
    };
    let json = std::env::temp_dir().join(format!("blockstm-eth-tests-{}.json", std::process::id()));
    let (ok, stdout, stderr) = blockstm(&[
        "eth-tests",
        "--fixtures",
        dir.to_str().unwrap(),
        "--filter",
        "stExample",
        "--threads",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("GeneralStateTests/stExample") && stdout.contains("total"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["total"]["pass"].as_u64().unwrap() > 0 && report["total"]["fail"] == 0, "{report}");
    std::fs::remove_file(json).unwrap();
}
