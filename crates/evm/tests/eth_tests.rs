//! The Ethereum community's blockchain tests (`BlockchainTests/` of ethereum/tests): every block
//! of every case on the sequential executor and the parallel one at 1, 2, 4 and 8 threads, the
//! adaptive rule on and off, all agreeing, each block matching its header (gas used, bloom,
//! receipts root, state root) and the final state matching `postState`; every block that must
//! be rejected rejected (or left to a consensus layer, counted).
//!
//! Needs `BLOCKSTM_ETH_TESTS` (CI sets it to `../shared/fixtures/ethereum-tests`); without it
//! the test says it was skipped.

use blockstm_evm::ethtests::{self, ETH_TESTS_ENV, RunOptions, Verdict};
use std::path::PathBuf;

#[test]
fn blockchain_tests_pass_on_every_executor() {
    let Some(dir) = std::env::var_os(ETH_TESTS_ENV).map(PathBuf::from) else {
        eprintln!("blockchain tests skipped: set {ETH_TESTS_ENV} to the ethereum-tests fixture directory");
        return;
    };
    blockstm_evm::warm_up().expect("KZG setup");
    let files = ethtests::test_files(&dir, None).unwrap_or_else(|e| panic!("{e}"));
    let results = ethtests::run_files(&dir, &files, &RunOptions::default(), 2);
    let (mut cases, mut skips, mut rejected, mut left) = (0, 0, 0, 0);
    let mut messages = Vec::new();
    for result in results {
        let file = result.unwrap_or_else(|e| panic!("{e}"));
        for case in file.cases {
            cases += 1;
            rejected += case.invalid.rejected_as_expected + case.invalid.rejected_otherwise;
            left += case.invalid.left_to_consensus;
            match case.verdict {
                Verdict::Pass => {}
                Verdict::Skip(reason) => {
                    assert!(!reason.is_empty(), "{}: skipped without a reason", case.name);
                    skips += 1;
                }
                Verdict::Fail(message) => {
                    messages.push(format!("{} {}: {message}", file.path.display(), case.name));
                }
            }
        }
    }
    eprintln!(
        "blockchain tests: {cases} cases, {} failed, {skips} skipped; \
         invalid blocks {rejected} rejected, {left} left to a consensus layer",
        messages.len()
    );
    assert!(messages.is_empty(), "failures:\n{}", messages.join("\n"));
    assert!(skips * 200 <= cases, "{skips} of {cases} cases skipped, above 0.5 %");
    assert!(cases > 6000, "only {cases} cases found under {}", dir.display());
}

#[test]
fn a_malformed_test_file_names_the_file_and_the_field() {
    let dir = std::env::temp_dir().join(format!("blockstm-eth-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.json");
    std::fs::write(&file, r#"{"case": {"network": "Cancun", "pre": {"0x0000000000000000000000000000000000000001": {"balance": "zero"}}}}"#).unwrap();
    let error = ethtests::run_file(&dir, &file, &RunOptions::default()).unwrap_err();
    assert!(error.to_string().contains("broken.json"), "{error}");
    assert!(error.field.contains("balance"), "{error}");
    std::fs::write(&file, "{").unwrap();
    assert!(ethtests::run_file(&dir, &file, &RunOptions::default()).is_err());
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(ethtests::test_files(&empty, None).unwrap_err().to_string().contains("no test files"));
    std::fs::remove_dir_all(dir).unwrap();
}
