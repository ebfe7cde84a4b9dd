//! `blockstm bench`.

use blockstm_evm::Gigagas;
use blockstm_executor::{Config, ParallelExecutor, SequentialExecutor, Stats, Storage, Vm};
use blockstm_workloads::measure::{Comparison, compare_with_baseline};
use blockstm_workloads::oracle::{Dag, profile};
use blockstm_workloads::{WorkVm, Workload};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `blockstm bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Workloads, comma-separated: p2p-N (N accounts), independent, hot-counter,
    /// hot-counter-delta, chain, fee-account, fee-account-delta on the synthetic VM; eth-native,
    /// eth-erc20, eth-amm on the EVM (blocks of --gas gas) [default: the whole suite]
    #[arg(short, long, value_delimiter = ',', value_parser = parse_workload)]
    workloads: Vec<BenchWorkload>,
    /// Worker thread counts, comma-separated [default: 1 and the number of cores]
    #[arg(short, long, value_delimiter = ',', value_parser = parse_threads)]
    threads: Vec<usize>,
    /// Transactions per block
    #[arg(short = 'n', long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    txns: u32,
    /// Interleaved sequential/parallel pairs per measurement (medians are reported)
    #[arg(short, long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Gas per EVM block (eth-* workloads; their transaction count follows from it)
    #[arg(long, default_value_t = 1_000_000_000, value_parser = clap::value_parser!(u64).range(21_000..))]
    gas: u64,
    /// Seed of the generated blocks
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// VM work per transaction, in microseconds
    #[arg(long, default_value_t = 5.0, value_parser = parse_work)]
    work_us: f64,
    /// Turn off the adaptive choice of the sequential path (every block runs on Block-STM)
    #[arg(long)]
    no_adaptive: bool,
    /// Largest claim of consecutive transactions per worker (default: the library's,
    /// blockstm_executor::tuning::AUTO_BATCH; 1 claims one at a time, the paper's scheduler)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Also write the results as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write a chart of speedup against the oracle bound (SVG) to FILE
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// A workload of `blockstm bench`: a synthetic block on the work VM, or a gigagas EVM block.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BenchWorkload {
    Synthetic(Workload),
    Evm(Gigagas),
}

impl std::fmt::Display for BenchWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchWorkload::Synthetic(w) => w.fmt(f),
            BenchWorkload::Evm(g) => g.fmt(f),
        }
    }
}

fn parse_workload(s: &str) -> Result<BenchWorkload, String> {
    if s.starts_with("eth-") {
        return s.parse().map(BenchWorkload::Evm).map_err(|e: blockstm_evm::UnknownGigagas| e.to_string());
    }
    s.parse()
        .map(BenchWorkload::Synthetic)
        .map_err(|e: blockstm_workloads::UnknownWorkload| format!("{e}; EVM: eth-native, eth-erc20, eth-amm"))
}

pub(crate) fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("thread count must be at least 1, got 0".into()),
        Ok(t) => Ok(t),
        Err(_) => Err(format!("not a thread count: {s:?}")),
    }
}

fn parse_work(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if w.is_finite() && (0.0..=1e6).contains(&w) => Ok(w),
        _ => Err(format!("work per transaction must be between 0 and 1e6 microseconds, got {s:?}")),
    }
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) txns: usize,
    pub(crate) threads: usize,
    #[serde(flatten)]
    pub(crate) fig: Figures,
    /// W / CP: the block's parallelism.
    pub(crate) parallelism: f64,
    /// Gas used by the block (EVM workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gas: Option<u64>,
    /// Transactions per second of the parallel run.
    pub(crate) tps: f64,
    /// alloy-evm's sequential block executor on the same block (EVM workloads), in the same
    /// rounds: its median time (ms), and the medians of its time over the parallel and over
    /// the sequential time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alloy_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) speedup_vs_alloy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sequential_vs_alloy: Option<f64>,
}

/// The figures of one side-by-side measurement of a block, shared by `bench` and `eth` rows
/// (flattened into their JSON).
#[derive(Debug, Serialize)]
pub(crate) struct Figures {
    /// Median sequential time, milliseconds.
    pub(crate) seq_ms: f64,
    /// Median parallel time, milliseconds.
    pub(crate) par_ms: f64,
    /// Median of the per-pair ratios seq / par, and their range.
    pub(crate) speedup: f64,
    pub(crate) speedup_min: f64,
    pub(crate) speedup_max: f64,
    /// Oracle bound W / T(P).
    pub(crate) bound: f64,
    /// speedup / bound.
    pub(crate) efficiency: f64,
    pub(crate) exec_per_txn: f64,
    pub(crate) val_per_txn: f64,
    /// How the last parallel run executed the block (block-stm, or why it went sequential).
    pub(crate) path: String,
}

impl Figures {
    /// The figures of `c`, a block of `txns` transactions whose oracle bound is `bound`.
    pub(crate) fn new(c: &Comparison, bound: f64, txns: usize) -> Self {
        let txns = txns.max(1) as f64;
        Self {
            seq_ms: c.seq.median * 1e3,
            par_ms: c.par.median * 1e3,
            speedup: c.speedup.median,
            speedup_min: c.speedup.min,
            speedup_max: c.speedup.max,
            bound,
            efficiency: c.speedup.median / bound,
            exec_per_txn: c.stats.executions as f64 / txns,
            val_per_txn: c.stats.validations as f64 / txns,
            path: path_of(&c.stats),
        }
    }

    /// The header of [`Self::ratio_columns`].
    pub(crate) fn ratio_header() -> String {
        format!("{:>8} {:>15} {:>7} {:>6}", "speedup", "range", "bound", "eff")
    }

    /// Speedup, its range, the bound and the efficiency, as the `bench` and `eth` tables print
    /// them.
    pub(crate) fn ratio_columns(&self) -> String {
        format!(
            "{:>7.3}x {:>6.2}x..{:>5.2}x {:>6.2}x {:>5.0}%",
            self.speedup,
            self.speedup_min,
            self.speedup_max,
            self.bound,
            self.efficiency * 100.0
        )
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    machine: Machine,
    txns: u32,
    runs: u32,
    seed: u64,
    work_us: f64,
    vm_rounds: u32,
    gas: u64,
    adaptive: bool,
    /// The largest claim per worker (`--batch`, else the library's default).
    batch: usize,
    results: &'a [Row],
}

/// The machine a report was measured on.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) os: &'static str,
    pub(crate) arch: &'static str,
}

impl Machine {
    pub(crate) fn this() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self { cores, os: std::env::consts::OS, arch: std::env::consts::ARCH }
    }
}

/// How a parallel run executed its block: `block-stm`, or why (and from where) it went
/// sequential.
fn path_of(stats: &Stats) -> String {
    match (stats.fallback, stats.fallback_from) {
        (None, _) => "block-stm".into(),
        (Some(reason), Some(from)) if from > 0 => format!("{reason:?} from {from}"),
        (Some(reason), _) => format!("{reason:?}"),
    }
}

/// Opens an output file before the (long) run, so a bad path fails at once.
pub(crate) fn create(path: &Option<PathBuf>, flag: &str) -> Result<Option<File>, String> {
    path.as_ref()
        .map(|p| File::create(p).map_err(|e| format!("cannot write {flag} file {}: {e}", p.display())))
        .transpose()
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), String> {
    let mut json = create(&args.json, "--json")?;
    let mut svg = create(&args.svg, "--svg")?;
    let machine = Machine::this();
    let cores = machine.cores;
    let workloads = if args.workloads.is_empty() {
        let synthetic = Workload::ALL.into_iter().map(BenchWorkload::Synthetic);
        synthetic.chain(Gigagas::ALL.into_iter().map(BenchWorkload::Evm)).collect()
    } else {
        args.workloads.clone()
    };
    let mut threads = if args.threads.is_empty() { vec![1, cores] } else { args.threads.clone() };
    threads.sort_unstable();
    threads.dedup();
    let txns = args.txns as usize;
    let vm = WorkVm::calibrated(Duration::from_secs_f64(args.work_us * 1e-6));
    let adaptive = !args.no_adaptive;
    let batch = args.batch.map_or(blockstm_executor::tuning::AUTO_BATCH, |b| b as usize);

    println!(
        "machine: {cores} cores ({} {}); VM work {:.1} us per transaction ({} rounds); {} txns per block; \
         medians of {} interleaved pairs; adaptive {}; batch {batch}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        args.work_us,
        vm.rounds,
        txns,
        args.runs,
        if adaptive { "on" } else { "off" }
    );
    let progress = ProgressBar::new((workloads.len() * threads.len()) as u64 * u64::from(args.runs));
    progress
        .set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").map_err(|e| e.to_string())?);

    let mut rows = Vec::new();
    for &workload in &workloads {
        let bench = Bench {
            name: workload.to_string(),
            threads: &threads,
            runs: args.runs,
            adaptive,
            batch,
            progress: &progress,
        };
        match workload {
            BenchWorkload::Synthetic(w) => {
                let block = w.generate(txns, args.seed);
                rows.extend(bench.measure(vm, &block.storage, &block.txns, None, None, |c| c)?);
            }
            BenchWorkload::Evm(g) => {
                bench.progress.set_message(format!("{workload}: building the block"));
                let block = g.block(args.gas, args.seed);
                let rules = blockstm_evm::adaptive_rules;
                // alloy-evm's block executor on the same block, as a client holds it.
                let db = blockstm_evm::oracle::cache_db(&block.pre_state, block.block_hashes());
                let envelopes = blockstm_evm::oracle::eip1559_envelopes(&block.txns)?;
                let env = block.evm_env();
                // The gas needs the outputs, which the oracle's profile does not keep: one more
                // sequential run, untimed.
                let expected_gas: u64 = blockstm_executor::BlockExecutor::execute_block(
                    &SequentialExecutor::new(block.vm()),
                    &block.pre_state,
                    &block.txns,
                )
                .map_err(|e| format!("{workload}: sequential run failed: {e}"))?
                .outputs
                .iter()
                .map(|r| r.gas_used)
                .sum();
                let mut alloy = || -> Result<f64, String> {
                    let start = Instant::now();
                    let out = blockstm_evm::oracle::alloy_evm_synthetic(&db, env.clone(), &envelopes);
                    let elapsed = start.elapsed().as_secs_f64();
                    let out = out.map_err(|e| format!("{workload}: alloy-evm's run failed: {e}"))?;
                    if out.gas_used != expected_gas {
                        return Err(format!(
                            "{workload}: alloy-evm used {} gas, blockstm {expected_gas}",
                            out.gas_used
                        ));
                    }
                    Ok(elapsed)
                };
                rows.extend(bench.measure(
                    block.vm(),
                    &block.pre_state,
                    &block.txns,
                    Some(expected_gas),
                    Some(&mut alloy),
                    rules,
                )?);
            }
        }
    }
    progress.finish_and_clear();
    print_table(&rows);

    if let Some(file) = json.as_mut() {
        let report = Report {
            machine,
            txns: args.txns,
            runs: args.runs,
            seed: args.seed,
            work_us: args.work_us,
            vm_rounds: vm.rounds,
            gas: args.gas,
            adaptive,
            batch,
            results: &rows,
        };
        serde_json::to_writer_pretty(&mut *file, &report).map_err(|e| format!("writing --json: {e}"))?;
        writeln!(file).map_err(|e| format!("writing --json: {e}"))?;
    }
    if let Some(file) = svg.as_mut() {
        file.write_all(crate::svg::chart(&rows).as_bytes()).map_err(|e| format!("writing --svg: {e}"))?;
    }
    Ok(())
}

/// One workload's measurement at each thread count.
struct Bench<'a> {
    name: String,
    threads: &'a [usize],
    runs: u32,
    adaptive: bool,
    batch: usize,
    progress: &'a ProgressBar,
}

impl Bench<'_> {
    /// Rows for `txns` on `vm` from `storage`: the oracle bound from a profiled sequential run,
    /// then a side-by-side comparison per thread count. `gas_used` is the block's gas (EVM); `baseline` times another executor of the block in the same rounds
    /// (alloy-evm's); `config` adds the VM's own settings to each thread count's.
    fn measure<VM, S>(
        &self,
        vm: VM,
        storage: &S,
        txns: &[VM::Transaction],
        gas_used: Option<u64>,
        mut baseline: Option<&mut dyn FnMut() -> Result<f64, String>>,
        config: impl Fn(Config) -> Config,
    ) -> Result<Vec<Row>, String>
    where
        VM: Vm + Clone,
        VM::Output: PartialEq,
        VM::Value: PartialEq,
        S: Storage<VM::Key, VM::Value>,
    {
        let name = &self.name;
        let sequential = SequentialExecutor::new(vm.clone());
        let dag = Dag::from_profiles(&profile(&vm, storage, txns)?);
        let mut rows = Vec::new();
        for &p in self.threads {
            self.progress.set_message(format!("{name} P={p}"));
            let base = Config::new(p).map_err(|e| e.to_string())?;
            let config = config(base.with_adaptive(self.adaptive).with_batch(self.batch));
            let parallel = ParallelExecutor::new(vm.clone(), config);
            let runs = self.runs as usize;
            let progress = || self.progress.inc(1);
            let base_time = baseline.as_deref_mut();
            let (c, base) =
                compare_with_baseline(&sequential, &parallel, storage, txns, runs, base_time, progress)
                    .map_err(|e| format!("{name} at {p} threads: {e}"))?;
            rows.push(Row {
                workload: name.clone(),
                txns: txns.len(),
                threads: p,
                fig: Figures::new(&c, dag.bound(p), txns.len()),
                parallelism: dag.work() / dag.critical_path().max(f64::MIN_POSITIVE),
                gas: gas_used,
                tps: txns.len() as f64 / c.par.median,
                alloy_ms: base.map(|b| b.time.median * 1e3),
                speedup_vs_alloy: base.map(|b| b.speedup.median),
                sequential_vs_alloy: base.map(|b| b.time.median / c.seq.median),
            });
        }
        Ok(rows)
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<13} {:>6} {:>3} {:>9} {:>9} {} {:>9} {:>8} {:>9} {:>9} {:>8}  path",
        "workload",
        "txns",
        "P",
        "seq ms",
        "par ms",
        Figures::ratio_header(),
        "exec/txn",
        "val/txn",
        "tps",
        "alloy ms",
        "vs alloy"
    );
    for r in rows {
        println!(
            "{:<13} {:>6} {:>3} {:>9.2} {:>9.2} {} {:>9.3} {:>8.3} {:>9.0} {:>9} {:>8}  {}",
            r.workload,
            r.txns,
            r.threads,
            r.fig.seq_ms,
            r.fig.par_ms,
            r.fig.ratio_columns(),
            r.fig.exec_per_txn,
            r.fig.val_per_txn,
            r.tps,
            r.alloy_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}")),
            r.speedup_vs_alloy.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}x")),
            r.fig.path
        );
    }
}
