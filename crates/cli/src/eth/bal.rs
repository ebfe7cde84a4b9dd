//! `blockstm eth --bal`: the corpus with block-level access lists (EIP-7928). The blocks
//! predate the fork, so each block's list is built by Block-STM in builder mode and checked,
//! byte for byte, against the one revm's sequential builder records under alloy-evm's block
//! executor; then, interleaved round after round, four runs of the block are timed through the
//! client API: sequential, Block-STM, Block-STM building the list, and execution from the list
//! (every transaction at once, no speculation); and two of alloy-evm's executor (transactions
//! indexed), without and with revm's own access-list builder, the reference for what building
//! the list costs. The list-driven result is checked against the
//! sequential one, and its re-executions are counted (none expected).

use super::EthArgs;
use crate::bench::Machine;
use alloy_evm::eth::spec::EthSpec;
use blockstm_evm::oracle::{alloy_evm_block_access_list, alloy_evm_block_indexed};
use blockstm_evm::{
    BalDiff, BlockInput, ClientBlock, ExecuteOptions, Fixtures, block_access_list_rlp,
    execute_block_from_access_list, execute_block_with,
};
use blockstm_executor::Config;
use blockstm_workloads::measure::{Summary, ratio, rotate};
use blockstm_workloads::oracle::{Dag, profile};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// One block's figures (medians over the rounds, ms; ratios are medians of each round's).
#[derive(Debug, Serialize)]
struct Row {
    block: u64,
    txns: usize,
    /// Accounts in the block's access list.
    accounts: usize,
    seq_ms: f64,
    blockstm_ms: f64,
    builder_ms: f64,
    bal_ms: f64,
    /// alloy-evm's executor over revm's `State`, transactions indexed, without and with revm's
    /// sequential access-list builder (the reference cost of building the list).
    alloy_ms: f64,
    alloy_builder_ms: f64,
    /// Sequential over Block-STM.
    blockstm_speedup: f64,
    /// Sequential over execution from the list, and its range over the rounds.
    bal_speedup: f64,
    bal_speedup_min: f64,
    bal_speedup_max: f64,
    /// Block-STM building the list over Block-STM alone, less one (a fraction).
    builder_overhead: f64,
    /// alloy-evm with revm's builder over alloy-evm alone, less one.
    revm_builder_overhead: f64,
    /// The oracle bound of Block-STM on `threads` threads (the block's dependency graph).
    bound: f64,
    /// Transactions executed again by list-driven execution (0 with a correct list).
    reexecutions: usize,
}

#[derive(Debug, Serialize)]
struct Totals {
    blocks: usize,
    /// Time-weighted: sums of medians over sums of medians.
    blockstm_speedup: f64,
    bal_speedup: f64,
    builder_overhead: f64,
    revm_builder_overhead: f64,
    bound: f64,
    slowest_bal: f64,
    slowest_blockstm: f64,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    machine: Machine,
    threads: usize,
    runs: u32,
    blocks: &'a [Row],
    totals: &'a Totals,
}

/// `config`: the Block-STM runs' (and the list-driven run's thread count), from `--threads`,
/// `--no-adaptive` and `--batch`.
pub(super) fn run(
    args: &EthArgs,
    fixtures: &Fixtures,
    numbers: &[u64],
    machine: Machine,
    config: Config,
) -> Result<(), String> {
    let mut json = crate::bench::create(&args.json, "--json")?;
    let threads = config.threads();
    println!(
        "machine: {} cores ({} {}); {} blocks; P = {threads}; medians of {} interleaved rounds of six runs",
        machine.cores,
        machine.os,
        machine.arch,
        numbers.len(),
        args.runs
    );
    let progress = ProgressBar::new(numbers.len() as u64 * u64::from(args.runs));
    progress
        .set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").map_err(|e| e.to_string())?);
    let mut rows = Vec::new();
    for &number in numbers {
        progress.set_message(format!("block {number}"));
        let block = fixtures.load(number).map_err(|e| e.to_string())?;
        let client = fixtures.load_client(&block).map_err(|e| e.to_string())?;
        let dag = Dag::from_profiles(&profile(&block.vm(), &block.pre_state, &block.txns)?);
        let mut row = time_block(&client, config, args.runs as usize, || progress.inc(1))?;
        row.bound = dag.bound(threads);
        rows.push(row);
    }
    progress.finish_and_clear();
    let totals = totals(&rows);
    print(&rows, &totals);
    if let Some(file) = json.as_mut() {
        let report = Report { machine, threads, runs: args.runs, blocks: &rows, totals: &totals };
        serde_json::to_writer_pretty(&mut *file, &report).map_err(|e| format!("writing --json: {e}"))?;
        writeln!(file).map_err(|e| format!("writing --json: {e}"))?;
    }
    Ok(())
}

/// `client`'s block checked (its list against revm's builder's, the list-driven result against
/// the sequential one), then timed: `runs` rounds of the six runs, the order rotating.
fn time_block(
    client: &ClientBlock,
    config: Config,
    runs: usize,
    on_round: impl FnMut(),
) -> Result<Row, String> {
    let number = client.header.number;
    let chain = EthSpec::mainnet();
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("block {number}: {what}: {e}");
    let input = client.input();
    let expected = alloy_evm_block_access_list(&client.db, &chain, input.env, input.ctx, input.transactions)
        .map_err(|e| fail("revm's access-list builder", &e))?;
    let sequential = execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential())
        .map_err(|e| fail("sequential execution", &e))?;
    let builder = ExecuteOptions::parallel(config).with_block_access_list();
    let built = execute_block_with(&client.db, &chain, client.input(), builder)
        .map_err(|e| fail("Block-STM building the access list", &e))?;
    let list = built.block_access_list.ok_or_else(|| format!("block {number}: no access list built"))?;
    if block_access_list_rlp(&list) != block_access_list_rlp(&expected) {
        return Err(format!(
            "block {number}: the access list Block-STM built differs from revm's builder's: {}",
            BalDiff::between(&list, &expected)
        ));
    }
    let driven = execute_block_from_access_list(&client.db, &chain, client.input(), &list, config)
        .map_err(|e| fail("execution from the access list", &e))?;
    if (&driven.receipts, &driven.state) != (&sequential.receipts, &sequential.state) {
        return Err(format!(
            "block {number}: execution from the access list differs from sequential execution"
        ));
    }
    let reexecutions = driven.stats.aborts;

    let input = || client.input();
    let time = |run: usize| -> Result<f64, String> {
        let start = Instant::now();
        let out = match run {
            0 => execute_block_with(&client.db, &chain, input(), ExecuteOptions::sequential()).map(drop),
            1 => execute_block_with(&client.db, &chain, input(), ExecuteOptions::parallel(config)).map(drop),
            2 => execute_block_with(&client.db, &chain, input(), builder).map(drop),
            3 => execute_block_from_access_list(&client.db, &chain, input(), &list, config).map(drop),
            k => {
                let BlockInput { env, ctx, transactions } = input();
                let elapsed = alloy_evm_block_indexed(&client.db, &chain, env, ctx, transactions, k == 5)
                    .map(|_| start.elapsed().as_secs_f64() * 1e3)
                    .map_err(|e| fail(PATHS[k], &e))?;
                return Ok(elapsed);
            }
        };
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        out.map_err(|e| fail(PATHS[run], &e))?;
        Ok(elapsed)
    };
    let times: [Vec<f64>; 6] = rotate(runs, time, on_round)?;
    let bal_speedup = ratio(&times[0], &times[3]);
    let [seq, stm, builder, bal, alloy, alloy_builder] =
        times.clone().map(|mut t| Summary::of(&mut t).median);
    Ok(Row {
        block: number,
        txns: client.transactions.len(),
        accounts: list.len(),
        seq_ms: seq,
        blockstm_ms: stm,
        builder_ms: builder,
        bal_ms: bal,
        alloy_ms: alloy,
        alloy_builder_ms: alloy_builder,
        blockstm_speedup: ratio(&times[0], &times[1]).median,
        bal_speedup: bal_speedup.median,
        bal_speedup_min: bal_speedup.min,
        bal_speedup_max: bal_speedup.max,
        builder_overhead: ratio(&times[2], &times[1]).median - 1.0,
        revm_builder_overhead: ratio(&times[5], &times[4]).median - 1.0,
        bound: f64::NAN,
        reexecutions,
    })
}

/// The timed runs, in the order `time_block` numbers them.
const PATHS: [&str; 6] = [
    "sequential",
    "Block-STM",
    "builder",
    "from the list",
    "alloy-evm, transactions indexed",
    "alloy-evm with revm's access-list builder",
];

fn totals(rows: &[Row]) -> Totals {
    let sum = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>();
    let seq = sum(|r| r.seq_ms);
    Totals {
        blocks: rows.len(),
        blockstm_speedup: seq / sum(|r| r.blockstm_ms),
        bal_speedup: seq / sum(|r| r.bal_ms),
        builder_overhead: sum(|r| r.builder_ms) / sum(|r| r.blockstm_ms) - 1.0,
        revm_builder_overhead: sum(|r| r.alloy_builder_ms) / sum(|r| r.alloy_ms) - 1.0,
        bound: seq / sum(|r| r.seq_ms / r.bound),
        slowest_bal: rows.iter().map(|r| r.bal_speedup).fold(f64::INFINITY, f64::min),
        slowest_blockstm: rows.iter().map(|r| r.blockstm_speedup).fold(f64::INFINITY, f64::min),
    }
}

fn print(rows: &[Row], t: &Totals) {
    println!(
        "{:>9} {:>5} {:>8} {:>8} {:>9} {:>8} {:>10} {:>8} {:>9} {:>8} {:>16} {:>6} {:>5}",
        "block",
        "txns",
        "accounts",
        "seq ms",
        "stm ms",
        "stm",
        "builder ms",
        "builder",
        "revm bld",
        "bal ms",
        "bal (range)",
        "bound",
        "re-ex"
    );
    for r in rows {
        println!(
            "{:>9} {:>5} {:>8} {:>8.3} {:>9.3} {:>7.3}x {:>10.3} {:>+7.1}% {:>+8.1}% {:>8.3} {:>6.3}x {:.2}..{:.2} {:>5.2}x {:>5}",
            r.block,
            r.txns,
            r.accounts,
            r.seq_ms,
            r.blockstm_ms,
            r.blockstm_speedup,
            r.builder_ms,
            r.builder_overhead * 100.0,
            r.revm_builder_overhead * 100.0,
            r.bal_ms,
            r.bal_speedup,
            r.bal_speedup_min,
            r.bal_speedup_max,
            r.bound,
            r.reexecutions
        );
    }
    println!(
        "total: {} blocks; time-weighted over sequential: Block-STM {:.3}x (bound {:.3}x), from the access list {:.3}x; \
         building the list costs Block-STM {:+.1} % (revm's builder costs alloy-evm {:+.1} %); \
         slowest block: Block-STM {:.3}x, from the list {:.3}x",
        t.blocks,
        t.blockstm_speedup,
        t.bound,
        t.bal_speedup,
        t.builder_overhead * 100.0,
        t.revm_builder_overhead * 100.0,
        t.slowest_blockstm,
        t.slowest_bal
    );
}
