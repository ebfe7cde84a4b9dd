//! The mainnet corpus through each way a client can execute it, side by side at P threads:
//! alloy-evm's sequential `EthBlockExecutor` over revm's `State` (what clients run today),
//! `BlockStmExecutorFactory` driven the same way (the executor's `State` serving the workers'
//! reads), the same executor given the block's access list (`execute_block_from_access_list`;
//! the list made beforehand by revm's builder), and `execute_block` over the `DatabaseRef`
//! (`DatabaseStorage`); and, to isolate what
//! the client API adds around the executors, `execute_block_sequential` against blockstm's
//! sequential executor run directly on the same `DatabaseStorage`. Each block's runs are
//! interleaved, `RUNS` rounds, medians summed over the corpus.
//!
//! `cargo run --release -p blockstm-evm --example client_paths -- ../shared/fixtures/ethereum-mainnet 2`

use alloy_evm::eth::spec::EthSpec;
use blockstm_evm::oracle::{
    alloy_evm_block, alloy_evm_block_access_list, through_factory, through_factory_from_access_list,
};
use blockstm_evm::{
    BlockInput, BlockStmExecutorFactory, DatabaseStorage, EvmTx, EvmVm, Fixtures, execute_block,
    execute_block_sequential,
};
use blockstm_executor::{BlockExecutor, Config, SequentialExecutor};
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "../shared/fixtures/ethereum-mainnet".into());
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let fixtures = Fixtures::open(&dir)?;
    blockstm_evm::warm_up()?;
    let config = blockstm_evm::adaptive_rules(Config::new(threads)?);
    let chain = EthSpec::mainnet();
    let (mut alloy, mut factory_ms, mut listed, mut api) = (0.0, 0.0, 0.0, 0.0);
    let (mut api_seq, mut raw_seq) = (0.0, 0.0);
    println!(
        "{:>9} {:>5} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "block", "txns", "alloy ms", "factory", "factory list", "api", "api seq", "raw seq"
    );
    for number in fixtures.block_numbers()? {
        let block = fixtures.load(number)?;
        let client = fixtures.load_client(&block)?;
        let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), config);
        let storage = DatabaseStorage::new(&client.db);
        let vm = EvmVm::from_env(client.env.clone(), &storage);
        let BlockInput { env, ctx, transactions } = client.input();
        let list = alloy_evm_block_access_list(&client.db, &chain, env, ctx, transactions)?;
        let mut times: [Vec<f64>; 6] = Default::default();
        for round in 0..RUNS {
            for which in 0..6 {
                let which = (which + round) % 6;
                let BlockInput { env, ctx, transactions } = client.input();
                let start = Instant::now();
                match which {
                    0 => drop(alloy_evm_block(&client.db, &chain, env, ctx, transactions)?),
                    1 => drop(through_factory(&factory, &client.db, env, ctx, transactions)?),
                    2 => drop(through_factory_from_access_list(
                        &factory,
                        &client.db,
                        env,
                        ctx,
                        transactions,
                        &list,
                    )?),
                    3 => drop(execute_block(&client.db, &chain, client.input(), config)?),
                    4 => drop(execute_block_sequential(&client.db, &chain, client.input())?),
                    // The executor alone: the transactions converted, run, nothing around them.
                    _ => {
                        let txns: Vec<EvmTx> = transactions.iter().map(EvmTx::from_recovered).collect();
                        drop(SequentialExecutor::new(vm.clone()).execute_block(&storage, &txns)?);
                    }
                }
                let ms = start.elapsed().as_secs_f64() * 1e3;
                times[which].push(ms);
            }
        }
        let [a, f, l, p, q, r] = times.map(median);
        let txns = client.transactions.len();
        println!("{number:>9} {txns:>5} {a:>10.3} {f:>10.3} {l:>12.3} {p:>10.3} {q:>10.3} {r:>10.3}");
        alloy += a;
        factory_ms += f;
        listed += l;
        api += p;
        api_seq += q;
        raw_seq += r;
    }
    println!(
        "total at {threads} threads: alloy-evm {alloy:.1} ms, factory {factory_ms:.1} ms ({:.3}x), factory from the list {listed:.1} ms ({:.3}x), execute_block {api:.1} ms ({:.3}x)",
        alloy / factory_ms,
        alloy / listed,
        alloy / api
    );
    println!(
        "sequential: execute_block_sequential {api_seq:.1} ms, the sequential executor alone on the same storage {raw_seq:.1} ms ({:+.1} % for the API)",
        (api_seq / raw_seq - 1.0) * 100.0
    );
    Ok(())
}
