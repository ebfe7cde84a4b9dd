//! `blockstm eth-tests`: the Ethereum community's blockchain tests, every block on the
//! sequential executor and the parallel one, checked against each other and the test.

use blockstm_evm::ethtests::{self, ETH_TESTS_ENV, FileResult, RunOptions, Verdict};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options of `blockstm eth-tests`.
#[derive(Debug, Args)]
pub(crate) struct EthTestsArgs {
    /// The blockchain tests directory (holding `BlockchainTests/`) [default: $BLOCKSTM_ETH_TESTS]
    #[arg(short, long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Only the test files whose path contains this
    #[arg(long)]
    filter: Option<String>,
    /// Thread counts of the parallel executor, comma-separated (each runs with the adaptive
    /// rule on and off, beside the sequential executor)
    #[arg(short, long, value_delimiter = ',', default_values_t = [1, 2, 4, 8])]
    threads: Vec<usize>,
    /// Test files run at once [default: the number of cores]
    #[arg(long)]
    jobs: Option<usize>,
    /// Also write the results as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Print every rejected block with the expected exception and the runner's error
    #[arg(short, long)]
    verbose: bool,
}

/// The counts of one group (or of all).
#[derive(Debug, Default, Serialize)]
struct Counts {
    pass: usize,
    fail: usize,
    skip: usize,
    /// Blocks expected to be rejected, rejected for a reason of the expected class.
    invalid_rejected: usize,
    /// ... rejected for a reason of the other class (a transaction's against the block's).
    invalid_rejected_otherwise: usize,
    /// ... not rejected: left to a node's consensus layer.
    invalid_left_to_consensus: usize,
}

/// One case that did not pass.
#[derive(Debug, Serialize)]
struct Problem {
    file: String,
    case: String,
    verdict: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct Report {
    groups: BTreeMap<String, Counts>,
    total: Counts,
    problems: Vec<Problem>,
    left_to_consensus: Vec<String>,
}

/// The blockchain tests directory: `--fixtures`, else `$BLOCKSTM_ETH_TESTS`.
pub(crate) fn fixtures_dir(arg: Option<&PathBuf>) -> Result<PathBuf, String> {
    match arg {
        Some(dir) => Ok(dir.clone()),
        None => std::env::var_os(ETH_TESTS_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| format!("no --fixtures given and ${ETH_TESTS_ENV} is not set")),
    }
}

pub(crate) fn run(args: &EthTestsArgs) -> Result<(), String> {
    let dir = fixtures_dir(args.fixtures.as_ref())?;
    if let Some(&zero) = args.threads.iter().find(|&&t| t == 0) {
        return Err(format!("thread count must be at least 1, got {zero}"));
    }
    blockstm_evm::warm_up().map_err(|e| e.to_string())?;
    let files = ethtests::test_files(&dir, args.filter.as_deref()).map_err(|e| e.to_string())?;
    let options = RunOptions {
        threads: args.threads.clone(),
        adaptive: vec![true, false],
        access_list_threads: args.threads.clone(),
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let start = std::time::Instant::now();
    let results = ethtests::run_files(&dir, &files, &options, jobs);
    let mut report = Report {
        groups: BTreeMap::new(),
        total: Counts::default(),
        problems: Vec::new(),
        left_to_consensus: Vec::new(),
    };
    for result in results {
        let FileResult { path, group, cases } = match result {
            Ok(result) => result,
            Err(error) => {
                // A malformed file fails, by name, and the run goes on.
                let file = error.file.strip_prefix(&dir).unwrap_or(&error.file).display().to_string();
                report.total.fail += 1;
                report.groups.entry(ethtests::group_of(&dir, &error.file)).or_default().fail += 1;
                report.problems.push(Problem {
                    file,
                    case: String::new(),
                    verdict: "fail",
                    message: error.to_string(),
                });
                continue;
            }
        };
        let file = path.strip_prefix(&dir).unwrap_or(&path).display().to_string();
        let counts = report.groups.entry(group).or_default();
        for case in cases {
            for counts in [&mut *counts, &mut report.total] {
                match case.verdict {
                    Verdict::Pass => counts.pass += 1,
                    Verdict::Fail(_) => counts.fail += 1,
                    Verdict::Skip(_) => counts.skip += 1,
                }
                counts.invalid_rejected += case.invalid.rejected_as_expected;
                counts.invalid_rejected_otherwise += case.invalid.rejected_otherwise;
                counts.invalid_left_to_consensus += case.invalid.left_to_consensus;
            }
            if args.verbose {
                for rejection in &case.rejections {
                    println!("rejected {file} {}: {rejection}", case.name);
                }
            }
            report
                .left_to_consensus
                .extend(case.left_to_consensus.iter().map(|why| format!("{file} {}: {why}", case.name)));
            match case.verdict {
                Verdict::Pass => {}
                Verdict::Fail(message) => report.problems.push(Problem {
                    file: file.clone(),
                    case: case.name,
                    verdict: "fail",
                    message,
                }),
                Verdict::Skip(message) => report.problems.push(Problem {
                    file: file.clone(),
                    case: case.name,
                    verdict: "skip",
                    message,
                }),
            }
        }
    }
    println!(
        "{:<44} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "group", "pass", "fail", "skip", "rejected", "other", "consensus"
    );
    let row = |name: &str, c: &Counts| {
        println!(
            "{name:<44} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
            c.pass,
            c.fail,
            c.skip,
            c.invalid_rejected,
            c.invalid_rejected_otherwise,
            c.invalid_left_to_consensus
        );
    };
    for (group, counts) in &report.groups {
        row(group, counts);
    }
    row("total", &report.total);
    for problem in &report.problems {
        println!("{} {} {}: {}", problem.verdict, problem.file, problem.case, problem.message);
    }
    println!(
        "{} files, {} cases in {:.1?}; parallel executor at {:?} threads, adaptive on and off",
        files.len(),
        report.total.pass + report.total.fail + report.total.skip,
        start.elapsed(),
        args.threads
    );
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if report.total.fail > 0 {
        return Err(format!("{} of the cases failed", report.total.fail));
    }
    Ok(())
}
