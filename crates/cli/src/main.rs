//! `blockstm`: benchmarks of the parallel executor against the sequential baseline and the
//! oracle bound of each block. See `blockstm bench --help`.

mod bench;
mod eth;
mod ethdiff;
mod ethtests;
mod svg;

use clap::{Parser, Subcommand};

/// mimalloc for every figure the CLI reports (both executors run on it): glibc malloc's arena
/// locks serialise worker threads that free memory another thread allocated, and revm allocates
/// per call frame. The allocator is the embedding binary's choice; this is ours.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "blockstm",
    version,
    about = "Block-STM parallel execution: benchmarks against sequential execution, synthetic and Ethereum mainnet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run workloads sequentially and in parallel side by side and print speedups, oracle
    /// bounds and efficiencies.
    Bench(bench::BenchArgs),
    /// Execute real Ethereum mainnet blocks (the fixture corpus) sequentially and in parallel,
    /// check each against its header, and print speedups, oracle bounds and efficiencies.
    Eth(eth::EthArgs),
    /// Run the Ethereum community's blockchain tests: every block on the sequential executor
    /// and the parallel one, checked against each other, the headers and the expected state.
    EthTests(ethtests::EthTestsArgs),
    /// The EVM-level differential: large blocks merged from the blockchain tests'
    /// transactions, sequential against parallel at 2 to 32 threads, for a time or one seed.
    EthDiff(ethdiff::EthDiffArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Eth(args) => eth::run(&args),
        Command::EthTests(args) => ethtests::run(&args),
        Command::EthDiff(args) => ethdiff::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
