//! The mainnet corpus through each way a client can execute it, side by side at P threads:
//! alloy-evm's sequential `EthBlockExecutor` over revm's `State` (what clients run today),
//! `BlockStmExecutorFactory` driven the same way (the executor's `State` serving the workers'
//! reads), and `execute_block` over the `DatabaseRef` (`DatabaseStorage`). Each block's three
//! runs are interleaved, `RUNS` rounds, medians summed over the corpus.
//!
//! `cargo run --release -p blockstm-evm --example client_paths -- ../shared/fixtures/ethereum-mainnet 2`

use alloy_evm::eth::spec::EthSpec;
use blockstm_evm::oracle::{alloy_evm_block, through_factory};
use blockstm_evm::{BlockInput, BlockStmExecutorFactory, Fixtures, execute_block};
use blockstm_executor::Config;
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
    let (mut alloy, mut factory_ms, mut api) = (0.0, 0.0, 0.0);
    println!("{:>9} {:>5} {:>10} {:>10} {:>10}", "block", "txns", "alloy ms", "factory", "api");
    for number in fixtures.block_numbers()? {
        let block = fixtures.load(number)?;
        let client = fixtures.load_client(&block)?;
        let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), config);
        let (mut a, mut f, mut p) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..RUNS {
            for which in 0..3 {
                let which = (which + round) % 3;
                let BlockInput { env, ctx, transactions } = client.input();
                let start = Instant::now();
                match which {
                    0 => drop(alloy_evm_block(&client.db, &chain, env, ctx, transactions)?),
                    1 => drop(through_factory(&factory, &client.db, env, ctx, transactions)?),
                    _ => drop(execute_block(&client.db, &chain, client.input(), config)?),
                }
                let ms = start.elapsed().as_secs_f64() * 1e3;
                [&mut a, &mut f, &mut p][which].push(ms);
            }
        }
        let (a, f, p) = (median(a), median(f), median(p));
        println!("{number:>9} {:>5} {a:>10.3} {f:>10.3} {p:>10.3}", client.transactions.len());
        alloy += a;
        factory_ms += f;
        api += p;
    }
    println!(
        "total at {threads} threads: alloy-evm {alloy:.1} ms, factory {factory_ms:.1} ms ({:.3}x), execute_block {api:.1} ms ({:.3}x)",
        alloy / factory_ms,
        alloy / api
    );
    Ok(())
}
