//! The Ethereum community's blockchain tests (ethereum/tests, `BlockchainTests/`) on blockstm:
//! every block of every case on the sequential executor and the parallel one at several thread
//! counts, with and without the adaptive rule, checked against each other and against the
//! test's expectations.
//!
//! For each case: the full `pre` state (its root checked against the genesis header); the
//! canonical chain, followed back from `lastblockhash`; for each of its blocks the
//! header-versus-parent rules that take a few lines (`rules::check_header`), the blob fields,
//! the EIP-4788 beacon root, the transactions, then withdrawals and block rewards, and the
//! header's gas used, logs bloom, receipts root and state root (alloy-trie); at the end the
//! exact `postState` (or `postStateHash`). Every block that must be rejected
//! (`expectException`) is executed on top of its parent and must fail, with an error naming
//! the block, the transaction where there is one, and the rule; [`InvalidBlocks`] counts how.
//!
//! The format is described in the fixtures' README; a malformed file is a [`FixtureError`]
//! naming the file and the JSON path of the field.

mod client;
mod merge;
mod model;
mod rules;
mod run;
mod world;

pub use merge::{Source, merged_block, source_files, sources};
pub use run::{CaseResult, InvalidBlocks, RunOptions, Verdict};

use crate::fixture::{FixtureError, error, read_json};
use model::TestCase;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The EVM differential's blocks hold at least this many transactions.
pub const DIFF_MIN_TXNS: usize = 500;

/// The EVM differential takes its transactions from cases whose block used at most this much
/// gas: heavier ones would make the merged blocks slow without adding conflicts.
pub const DIFF_MAX_GAS: u64 = 1_000_000;

/// The environment variable naming the blockchain tests directory (the folder holding
/// `BlockchainTests/`), read by the test suite.
pub const ETH_TESTS_ENV: &str = "BLOCKSTM_ETH_TESTS";

/// The results of one test file.
#[derive(Clone, Debug)]
pub struct FileResult {
    /// The file.
    pub path: PathBuf,
    /// Its group: the folders between `BlockchainTests/` and the file
    /// (`GeneralStateTests/stExample`).
    pub group: String,
    /// One result per case, in the file's order of names.
    pub cases: Vec<CaseResult>,
}

/// The test files under `dir` (a folder holding `BlockchainTests/`, or any folder of test files)
/// whose path contains `filter`, sorted.
pub fn test_files(dir: &Path, filter: Option<&str>) -> Result<Vec<PathBuf>, FixtureError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| error(&folder, "", format!("cannot read: {e}")))?;
        for entry in entries {
            let path = entry.map_err(|e| error(&folder, "", format!("cannot read: {e}")))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json")
                && filter.is_none_or(|f| path.to_string_lossy().contains(f))
            {
                files.push(path);
            }
        }
    }
    if files.is_empty() && filter.is_none() {
        return Err(error(dir, "", "no test files (*.json) in this directory"));
    }
    files.sort();
    Ok(files)
}

/// The group of `path`: the folders after `BlockchainTests/` (or after `root`) up to the file.
pub fn group_of(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .parent()
        .map(|p| p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let start = parts.iter().position(|p| p == "BlockchainTests").map_or(0, |i| i + 1);
    parts[start..].join("/")
}

/// Runs every case of one test file.
pub fn run_file(root: &Path, path: &Path, options: &RunOptions) -> Result<FileResult, FixtureError> {
    let cases: BTreeMap<String, TestCase> = read_json(path)?;
    let results = cases.iter().map(|(name, case)| run::run_case(name, case, options)).collect();
    Ok(FileResult { path: path.to_owned(), group: group_of(root, path), cases: results })
}

/// Runs `files` on `workers` threads (each takes every `workers`-th file), in file order.
pub fn run_files(
    root: &Path,
    files: &[PathBuf],
    options: &RunOptions,
    workers: usize,
) -> Vec<Result<FileResult, FixtureError>> {
    let workers = workers.clamp(1, files.len().max(1));
    let mut slots: Vec<Option<Result<FileResult, FixtureError>>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    files
                        .iter()
                        .enumerate()
                        .skip(w)
                        .step_by(workers)
                        .map(|(i, path)| (i, run_file(root, path, options)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (i, result) in handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                slots[i] = Some(result);
            }
        }
    });
    slots.into_iter().flatten().collect()
}
