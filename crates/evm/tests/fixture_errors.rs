//! Malformed fixtures give an error naming the file and the field, never a panic. Each test
//! writes a small valid fixture (one block, one contract), checks it loads, then corrupts it.

use blockstm_evm::{FixtureError, Fixtures};
use std::path::{Path, PathBuf};

const CODE_HASH: &str = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
// keccak256(0x00) (the code "STOP").
const STOP_HASH: &str = "0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a";

fn block_json() -> String {
    format!(
        r#"{{"number":"0x1","miner":"0x00000000000000000000000000000000000000aa","timestamp":"0x10",
        "gasLimit":"0x1000000","gasUsed":"0x5208","difficulty":"0x1","logsBloom":"0x{}",
        "receiptsRoot":"{CODE_HASH}","uncles":[],
        "transactions":[{{"type":"0x0","from":"0x00000000000000000000000000000000000000b0",
        "to":"0x00000000000000000000000000000000000000c0","value":"0x0","gasPrice":"0x1",
        "gas":"0x5208","input":"0x","nonce":"0x0"}}]}}"#,
        "00".repeat(256)
    )
}

fn pre_state_json() -> String {
    format!(
        r#"{{"0x00000000000000000000000000000000000000b0":{{"balance":"0xffffffff","nonce":0,"storage":{{}}}},
        "0x00000000000000000000000000000000000000c0":{{"balance":"0x0","nonce":1,"code_hash":"{STOP_HASH}","storage":{{"0x1":"0x2"}}}}}}"#
    )
}

/// A fixture directory with block 1, in a fresh temporary directory.
fn fixture(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blockstm-evm-fixture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("blocks/1")).unwrap();
    std::fs::write(dir.join("bytecodes.json"), format!(r#"{{"{STOP_HASH}":"0x00"}}"#)).unwrap();
    std::fs::write(dir.join("block_hashes.json"), format!(r#"{{"0":"{CODE_HASH}"}}"#)).unwrap();
    std::fs::write(dir.join("blocks/1/block.json"), block_json()).unwrap();
    std::fs::write(dir.join("blocks/1/pre_state.json"), pre_state_json()).unwrap();
    dir
}

/// A fixture directory `name` whose file `file` (relative to it) holds `contents` instead.
fn corrupted(name: &str, file: &str, contents: &str) -> PathBuf {
    let dir = fixture(name);
    std::fs::write(dir.join(file), contents).unwrap();
    dir
}

fn load(dir: &Path) -> Result<usize, FixtureError> {
    let fixtures = Fixtures::open(dir)?;
    let mut txns = 0;
    for number in fixtures.block_numbers()? {
        txns += fixtures.load(number)?.txns.len();
    }
    Ok(txns)
}

fn expect_error(dir: &Path, file: &str, field: &str, message: &str) {
    let err = load(dir).expect_err("the corrupted fixture loaded");
    assert!(err.file.ends_with(file), "error names {} instead of {file}: {err}", err.file.display());
    assert_eq!(err.field, field, "{err}");
    assert!(err.message.contains(message), "message {:?} lacks {message:?}", err.message);
    eprintln!("{err}");
    let text = err.to_string();
    assert!(text.contains(file) && text.contains(field), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_valid_fixture_loads() {
    let dir = fixture("valid");
    assert_eq!(load(&dir), Ok(1));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncated_json_names_the_file() {
    let dir = fixture("truncated");
    let json = block_json();
    std::fs::write(dir.join("blocks/1/block.json"), &json[..json.len() / 2]).unwrap();
    let err = load(&dir).expect_err("loaded");
    assert!(err.file.ends_with("blocks/1/block.json"), "{err}");
    assert!(err.message.contains("EOF"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_code_names_the_account() {
    let dir = corrupted("missing-code", "bytecodes.json", "{}");
    expect_error(
        &dir,
        "pre_state.json",
        "0x00000000000000000000000000000000000000c0.code_hash",
        "no code for hash",
    );
}

#[test]
fn wrong_field_type_names_the_field() {
    let dir = corrupted(
        "wrong-type",
        "blocks/1/block.json",
        &block_json().replace(r#""gasUsed":"0x5208""#, r#""gasUsed":[21000]"#),
    );
    expect_error(&dir, "block.json", "gasUsed", "");

    let dir = corrupted(
        "wrong-type-tx",
        "blocks/1/block.json",
        &block_json().replace(r#""gas":"0x5208""#, r#""gas":true"#),
    );
    expect_error(&dir, "block.json", "transactions[0].gas", "");

    let dir = corrupted(
        "wrong-type-state",
        "blocks/1/pre_state.json",
        &pre_state_json().replace(r#""nonce":1"#, r#""nonce":"one""#),
    );
    expect_error(&dir, "pre_state.json", "0x00000000000000000000000000000000000000c0.nonce", "invalid type");
}

#[test]
fn missing_fields_and_files_are_named() {
    let dir = corrupted(
        "missing-field",
        "blocks/1/block.json",
        &block_json().replace(r#""miner":"0x00000000000000000000000000000000000000aa","#, ""),
    );
    expect_error(&dir, "block.json", "", "missing field `miner`");

    let dir = fixture("missing-file");
    std::fs::remove_file(dir.join("blocks/1/pre_state.json")).unwrap();
    expect_error(&dir, "pre_state.json", "", "cannot read");

    let dir = fixture("missing-hashes");
    std::fs::remove_file(dir.join("block_hashes.json")).unwrap();
    expect_error(&dir, "block_hashes.json", "", "cannot read");

    let err = Fixtures::open("/nonexistent/blockstm-fixtures").expect_err("opened");
    assert!(err.to_string().contains("/nonexistent/blockstm-fixtures"), "{err}");
}

#[test]
fn a_block_in_the_wrong_directory_is_an_error() {
    let dir = fixture("wrong-number");
    std::fs::rename(dir.join("blocks/1"), dir.join("blocks/2")).unwrap();
    expect_error(&dir, "block.json", "number", "in the directory of block 2");
}
