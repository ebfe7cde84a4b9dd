//! `blockstm eth` on bad input: a clear error naming the file (and the field), a non-zero exit,
//! no panic; and `blockstm eth --bal` on a corpus block.

use std::path::PathBuf;
use std::process::Command;

fn blockstm(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blockstm"))
        .args(args)
        .env_remove("BLOCKSTM_ETH_FIXTURES")
        .output()
        .expect("run blockstm");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A fixture directory whose only block has a truncated `block.json`.
fn corrupted_fixture() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blockstm-cli-eth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("blocks/7")).unwrap();
    std::fs::write(dir.join("bytecodes.json"), "{}").unwrap();
    std::fs::write(dir.join("block_hashes.json"), "{}").unwrap();
    std::fs::write(dir.join("blocks/7/block.json"), r#"{"number":"0x7","miner":"0x00000000000000"#).unwrap();
    std::fs::write(dir.join("blocks/7/pre_state.json"), "{}").unwrap();
    dir
}

#[test]
fn corrupted_fixtures_fail_with_the_file_named() {
    let dir = corrupted_fixture();
    let (ok, stderr) = blockstm(&["eth", "--fixtures", dir.to_str().unwrap(), "-r", "1"]);
    assert!(!ok, "exit status was success");
    assert!(stderr.contains("blocks/7/block.json") && stderr.contains("EOF"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(dir.join("blocks/7/block.json"), r#"{"number":"0x7","miner":7}"#).unwrap();
    let (ok, stderr) = blockstm(&["eth", "--fixtures", dir.to_str().unwrap(), "-r", "1"]);
    assert!(!ok);
    assert!(stderr.contains("block.json") && stderr.contains("`miner`"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_fixtures_and_zero_threads_are_errors() {
    let (ok, stderr) = blockstm(&["eth"]);
    assert!(!ok);
    assert!(stderr.contains("--fixtures") && stderr.contains("BLOCKSTM_ETH_FIXTURES"), "{stderr}");
    let (ok, stderr) = blockstm(&["eth", "--fixtures", "/nonexistent/fixtures"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/fixtures"), "{stderr}");
    let (ok, stderr) = blockstm(&["eth", "--fixtures", "/nonexistent/fixtures", "--threads", "0"]);
    assert!(!ok);
    assert!(stderr.contains("at least 1"), "{stderr}");
}

/// `--bal` on a real block (the fixtures from `BLOCKSTM_ETH_FIXTURES`; skipped without them):
/// the list checked against revm's builder, the four paths timed, the totals printed.
#[test]
fn access_lists_on_a_corpus_block() {
    let Some(fixtures) = std::env::var_os("BLOCKSTM_ETH_FIXTURES") else {
        eprintln!("skipped: set BLOCKSTM_ETH_FIXTURES to the mainnet fixture directory");
        return;
    };
    let fixtures = fixtures.to_str().expect("a UTF-8 path").to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_blockstm"))
        .args([
            "eth",
            "--fixtures",
            &fixtures,
            "--block",
            "4370000",
            "--runs",
            "1",
            "--threads",
            "2",
            "--bal",
        ])
        .output()
        .expect("run blockstm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("from the access list") && stdout.contains("4370000"), "{stdout}");
}
