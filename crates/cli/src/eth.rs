//! `blockstm eth`: real mainnet blocks through the client API (`execute_block`), sequential
//! against parallel, with each block's oracle bound, after checking the block against its
//! header; and alloy-evm's sequential block executor over revm's `State` (what a client runs
//! today) timed in the same rounds.

mod bal;

use crate::bench::Figures;
use alloy_evm::eth::spec::EthSpec;
use blockstm_evm::oracle::alloy_evm_block;
use blockstm_evm::{BlockInput, FIXTURES_ENV, Fixtures, execute_block, execute_block_sequential};
use blockstm_executor::Config;
use blockstm_workloads::measure::interleave_with_baseline;
use blockstm_workloads::oracle::{Dag, profile};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `blockstm eth`.
#[derive(Debug, Args)]
pub(crate) struct EthArgs {
    /// The mainnet fixture directory [default: $BLOCKSTM_ETH_FIXTURES]
    #[arg(short, long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Blocks to run, comma-separated [default: every block of the fixtures]
    #[arg(short, long, value_delimiter = ',')]
    block: Vec<u64>,
    /// Worker threads [default: the number of cores]
    #[arg(short, long, value_parser = crate::bench::parse_threads)]
    threads: Option<usize>,
    /// Interleaved sequential/parallel pairs per block (medians are reported)
    #[arg(short, long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Turn off the adaptive choice of the sequential path
    #[arg(long)]
    no_adaptive: bool,
    /// Largest claim of consecutive transactions per worker (default: the library's,
    /// blockstm_executor::tuning::AUTO_BATCH; 1 claims one at a time, the paper's scheduler)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Also write the results as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Block-level access lists (EIP-7928): build each block's list with Block-STM, check it
    /// against revm's builder, and time sequential execution, Block-STM, Block-STM building the
    /// list, and execution from the list side by side
    #[arg(long)]
    bal: bool,
}

/// One block's figures.
#[derive(Debug, Serialize)]
struct BlockRow {
    block: u64,
    fork: String,
    txns: usize,
    gas: u64,
    threads: usize,
    #[serde(flatten)]
    fig: Figures,
    /// alloy-evm's sequential block executor (median, ms).
    alloy_ms: f64,
    /// alloy-evm's time over the parallel time, median of the rounds.
    speedup_vs_alloy: f64,
}

/// Figures over all blocks.
#[derive(Debug, Serialize)]
struct Totals {
    blocks: usize,
    txns: usize,
    gas: u64,
    /// Sum of sequential medians over sum of parallel medians.
    time_weighted_speedup: f64,
    /// Sum of sequential medians over the sum of each block's sequential time divided by its
    /// bound: the speedup the bound allows, weighted the same way.
    time_weighted_bound: f64,
    /// time_weighted_speedup / time_weighted_bound.
    time_weighted_efficiency: f64,
    /// Sum of alloy-evm's medians over sum of parallel medians.
    time_weighted_speedup_vs_alloy: f64,
    /// Sum of alloy-evm's medians over sum of sequential medians (above 1: ours is faster).
    sequential_vs_alloy: f64,
    geomean_speedup: f64,
    geomean_bound: f64,
    min_speedup: f64,
    /// Gas per second, sequential and parallel, over all blocks.
    seq_gas_per_s: f64,
    par_gas_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    machine: crate::bench::Machine,
    fixtures: String,
    runs: u32,
    adaptive: bool,
    /// The largest claim per worker (`--batch`, else the library's default).
    batch: usize,
    blocks: &'a [BlockRow],
    totals: &'a Totals,
}

pub(crate) fn run(args: &EthArgs) -> Result<(), String> {
    let mut json = crate::bench::create(&args.json, "--json")?;
    let dir = match &args.fixtures {
        Some(dir) => dir.clone(),
        None => std::env::var_os(FIXTURES_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| format!("no fixtures: pass --fixtures DIR or set {FIXTURES_ENV}"))?,
    };
    let fixtures = Fixtures::open(&dir).map_err(|e| e.to_string())?;
    // As a node would at start-up: otherwise the first Cancun block with a blob proof loads the
    // KZG trusted setup (~3 s) inside its header check.
    blockstm_evm::warm_up().map_err(|e| e.to_string())?;
    let numbers = if args.block.is_empty() {
        fixtures.block_numbers().map_err(|e| e.to_string())?
    } else {
        args.block.clone()
    };
    let machine = crate::bench::Machine::this();
    let threads = args.threads.unwrap_or(machine.cores);
    let adaptive = !args.no_adaptive;
    let batch = args.batch.map_or(blockstm_executor::tuning::AUTO_BATCH, |b| b as usize);
    let config = blockstm_evm::adaptive_rules(
        Config::new(threads).map_err(|e| e.to_string())?.with_adaptive(adaptive).with_batch(batch),
    );
    if args.bal {
        return bal::run(args, &fixtures, &numbers, machine, config);
    }
    println!(
        "machine: {} cores ({} {}); {} blocks from {}; P = {threads}; medians of {} interleaved pairs; adaptive {}",
        machine.cores,
        machine.os,
        machine.arch,
        numbers.len(),
        dir.display(),
        args.runs,
        if adaptive { "on" } else { "off" }
    );
    let progress = ProgressBar::new(numbers.len() as u64 * u64::from(args.runs));
    progress
        .set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").map_err(|e| e.to_string())?);
    let mut rows = Vec::new();
    for &number in &numbers {
        progress.set_message(format!("block {number}"));
        let block = fixtures.load(number).map_err(|e| e.to_string())?;
        let client = fixtures.load_client(&block).map_err(|e| e.to_string())?;
        let chain = EthSpec::mainnet();
        // Through the client API, as a node calls it: checked once against the header, and
        // the parallel result against the sequential one, then timed.
        let checked = execute_block_sequential(&client.db, &chain, client.input())
            .map_err(|e| format!("block {number}: sequential execution failed: {e}"))?;
        block
            .check_receipts(&checked.receipts)
            .map_err(|e| format!("block {number} does not match its header: {e}"))?;
        let parallel = execute_block(&client.db, &chain, client.input(), config)
            .map_err(|e| format!("block {number}: parallel execution failed: {e}"))?;
        if (&parallel.receipts, &parallel.requests, &parallel.state)
            != (&checked.receipts, &checked.requests, &checked.state)
        {
            return Err(format!("block {number}: the parallel result differs from the sequential one"));
        }
        let gas = checked.gas_used;
        let vm = block.vm();
        let dag = Dag::from_profiles(&profile(&vm, &block.pre_state, &block.txns)?);
        // alloy-evm runs in each round just before the parallel run (pairs alternate which of
        // sequential and parallel comes first).
        let mut alloy = || -> Result<f64, String> {
            let BlockInput { env, ctx, transactions } = client.input();
            let start = Instant::now();
            let out = alloy_evm_block(&client.db, &chain, env, ctx, transactions);
            let elapsed = start.elapsed().as_secs_f64();
            out.map_err(|e| format!("block {number}: alloy-evm's execution failed: {e}"))?;
            Ok(elapsed)
        };
        let (c, alloy) = interleave_with_baseline(
            || {
                let start = Instant::now();
                let out = execute_block_sequential(&client.db, &chain, client.input());
                let elapsed = start.elapsed().as_secs_f64();
                out.map_err(|e| format!("block {number}: sequential execution failed: {e}"))?;
                Ok(elapsed)
            },
            || {
                let start = Instant::now();
                let out = execute_block(&client.db, &chain, client.input(), config);
                let elapsed = start.elapsed().as_secs_f64();
                let out = out.map_err(|e| format!("block {number}: parallel execution failed: {e}"))?;
                Ok((elapsed, out.stats))
            },
            Some(&mut alloy),
            args.runs as usize,
            || progress.inc(1),
        )?;
        rows.push(BlockRow {
            block: number,
            fork: format!("{:?}", block.spec()),
            txns: client.transactions.len(),
            gas,
            threads,
            fig: Figures::new(&c, dag.bound(threads), block.txns.len()),
            alloy_ms: alloy.map_or(f64::NAN, |a| a.time.median * 1e3),
            speedup_vs_alloy: alloy.map_or(f64::NAN, |a| a.speedup.median),
        });
    }
    progress.finish_and_clear();
    let totals = totals(&rows);
    print_table(&rows, &totals);
    if let Some(file) = json.as_mut() {
        let report = Report {
            machine,
            fixtures: dir.display().to_string(),
            runs: args.runs,
            adaptive,
            batch,
            blocks: &rows,
            totals: &totals,
        };
        serde_json::to_writer_pretty(&mut *file, &report).map_err(|e| format!("writing --json: {e}"))?;
        writeln!(file).map_err(|e| format!("writing --json: {e}"))?;
    }
    Ok(())
}

fn totals(rows: &[BlockRow]) -> Totals {
    let seq: f64 = rows.iter().map(|r| r.fig.seq_ms).sum();
    let alloy: f64 = rows.iter().map(|r| r.alloy_ms).sum();
    let par: f64 = rows.iter().map(|r| r.fig.par_ms).sum();
    let at_bound: f64 = rows.iter().map(|r| r.fig.seq_ms / r.fig.bound).sum();
    let geomean = |f: fn(&BlockRow) -> f64| {
        (rows.iter().map(|r| f(r).ln()).sum::<f64>() / rows.len().max(1) as f64).exp()
    };
    let gas: u64 = rows.iter().map(|r| r.gas).sum();
    let time_weighted_speedup = seq / par;
    let time_weighted_bound = seq / at_bound;
    Totals {
        blocks: rows.len(),
        txns: rows.iter().map(|r| r.txns).sum(),
        gas,
        time_weighted_speedup,
        time_weighted_bound,
        time_weighted_efficiency: time_weighted_speedup / time_weighted_bound,
        time_weighted_speedup_vs_alloy: alloy / par,
        sequential_vs_alloy: alloy / seq,
        geomean_speedup: geomean(|r| r.fig.speedup),
        geomean_bound: geomean(|r| r.fig.bound),
        min_speedup: rows.iter().map(|r| r.fig.speedup).fold(f64::INFINITY, f64::min),
        seq_gas_per_s: gas as f64 / (seq * 1e-3),
        par_gas_per_s: gas as f64 / (par * 1e-3),
    }
}

fn print_table(rows: &[BlockRow], t: &Totals) {
    println!(
        "{:>9} {:<15} {:>5} {:>10} {:>3} {:>8} {:>8} {} {:>8} {:>8} {:>8}  path",
        "block",
        "fork",
        "txns",
        "gas",
        "P",
        "seq ms",
        "par ms",
        Figures::ratio_header(),
        "exec/txn",
        "alloy ms",
        "vs alloy"
    );
    for r in rows {
        println!(
            "{:>9} {:<15} {:>5} {:>10} {:>3} {:>8.3} {:>8.3} {} {:>8.3} {:>8.3} {:>7.3}x  {}",
            r.block,
            r.fork,
            r.txns,
            r.gas,
            r.threads,
            r.fig.seq_ms,
            r.fig.par_ms,
            r.fig.ratio_columns(),
            r.fig.exec_per_txn,
            r.alloy_ms,
            r.speedup_vs_alloy,
            r.fig.path
        );
    }
    println!(
        "total: {} blocks, {} txns, {} gas; time-weighted speedup {:.3}x against a time-weighted bound of {:.3}x \
         ({:.0} %); geometric mean {:.3}x (bound {:.3}x); slowest block {:.3}x; {:.0} Mgas/s sequential, {:.0} Mgas/s parallel\n         against alloy-evm's sequential block executor: parallel {:.3}x time-weighted, our sequential executor {:.3}x",
        t.blocks,
        t.txns,
        t.gas,
        t.time_weighted_speedup,
        t.time_weighted_bound,
        t.time_weighted_efficiency * 100.0,
        t.geomean_speedup,
        t.geomean_bound,
        t.min_speedup,
        t.seq_gas_per_s / 1e6,
        t.par_gas_per_s / 1e6,
        t.time_weighted_speedup_vs_alloy,
        t.sequential_vs_alloy
    );
}
