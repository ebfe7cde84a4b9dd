//! `blockstm eth-diff`: the EVM-level differential, for hours (the soak) or for one seed.
//! Large blocks merged from the blockchain tests' own transactions
//! (`blockstm_evm::ethtests::merged_block`), sequential against parallel at 2 to 32 threads.

use blockstm_evm::SpecId;
use blockstm_evm::ethtests::{self, DIFF_MAX_GAS, DIFF_MIN_TXNS};
use blockstm_executor::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const THREADS: [usize; 6] = [2, 3, 4, 8, 16, 32];

/// Options of `blockstm eth-diff`.
#[derive(Debug, Args)]
pub(crate) struct EthDiffArgs {
    /// The blockchain tests directory (holding `BlockchainTests/`) [default: $BLOCKSTM_ETH_TESTS]
    #[arg(short, long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Run for this many minutes (default: until a divergence or interrupted)
    #[arg(long)]
    minutes: Option<f64>,
    /// The first seed
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Check only the block of this seed
    #[arg(long)]
    replay: Option<u64>,
    /// With --replay: only this thread count [default: 2, 3, 4, 8, 16 and 32]
    #[arg(short, long, value_parser = crate::bench::parse_threads)]
    threads: Option<usize>,
}

pub(crate) fn run(args: &EthDiffArgs) -> Result<(), String> {
    let dir = crate::ethtests::fixtures_dir(args.fixtures.as_ref())?;
    blockstm_evm::warm_up().map_err(|e| e.to_string())?;
    let files = ethtests::source_files(&dir).map_err(|e| e.to_string())?;
    let sources = ethtests::sources(&files, SpecId::CANCUN, DIFF_MAX_GAS).map_err(|e| e.to_string())?;
    if sources.is_empty() {
        return Err(format!("{}: no one-block Cancun cases to merge", dir.display()));
    }
    let threads: Vec<usize> = args.threads.map_or(THREADS.to_vec(), |t| vec![t]);
    let deadline = args.minutes.map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0));
    let seeds: Box<dyn Iterator<Item = u64>> = match args.replay {
        Some(seed) => Box::new(std::iter::once(seed)),
        None => Box::new(args.seed..),
    };
    let (mut blocks, mut txns, mut last_report) = (0u64, 0usize, Instant::now());
    for seed in seeds {
        if deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        let block = ethtests::merged_block(&sources, seed, DIFF_MIN_TXNS)?;
        let vm = block.vm();
        let expected = SequentialExecutor::new(vm.clone()).execute_block(&block.pre_state, &block.txns);
        for &t in &threads {
            for adaptive in [false, true] {
                let config = Config::new(t).map_err(|e| e.to_string())?.with_adaptive(adaptive);
                let actual =
                    ParallelExecutor::new(vm.clone(), config).execute_block(&block.pre_state, &block.txns);
                let same = match (&actual, &expected) {
                    (Ok(a), Ok(e)) => a.outputs == e.outputs && a.state == e.state,
                    (Err(a), Err(e)) => a == e,
                    _ => false,
                };
                if !same {
                    return Err(format!(
                        "seed {seed}: the parallel executor at {t} threads (adaptive {adaptive}) differs from the \
                         sequential one; replay: blockstm eth-diff --replay {seed} --threads {t}"
                    ));
                }
            }
        }
        blocks += 1;
        txns += block.txns.len();
        if args.replay.is_some() {
            println!("seed {seed}: {} transactions, identical at threads {threads:?}", block.txns.len());
        } else if last_report.elapsed() > Duration::from_secs(10) {
            println!("{blocks} blocks ({txns} transactions) identical so far, at seed {seed}");
            last_report = Instant::now();
        }
    }
    println!("{blocks} merged blocks, {txns} transactions: identical at threads {threads:?}");
    Ok(())
}
