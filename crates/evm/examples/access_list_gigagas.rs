//! A gigagas block with its block-level access list (EIP-7928), through the client API at P
//! threads: sequential execution, Block-STM, Block-STM building the list, and execution from
//! the list, timed side by side (ROUNDS interleaved rounds, the order rotating; medians and the
//! per-round ratios to the sequential time). The list is checked against revm's builder first.
//!
//! `cargo run --release -p blockstm-evm --example access_list_gigagas -- eth-erc20 2 [ROUNDS]`

use alloy_consensus::Header;
use alloy_evm::eth::spec::EthSpec;
use alloy_primitives::B256;
use blockstm_evm::oracle::{alloy_evm_block_access_list, cache_db, eip1559_envelopes};
use blockstm_evm::{
    BalDiff, ClientBlock, ExecuteOptions, Gigagas, block_access_list_rlp, execute_block_from_access_list,
    execute_block_with,
};
use blockstm_executor::Config;
use std::collections::HashMap;
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let workload: Gigagas = args.next().unwrap_or_else(|| "eth-erc20".into()).parse()?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let rounds: usize = args.next().map_or(Ok(5), |t| t.parse())?;
    blockstm_evm::warm_up()?;
    let block = workload.block(1_000_000_000, 42);
    let client = ClientBlock {
        db: cache_db(&block.pre_state, &HashMap::new()),
        header: Header { parent_beacon_block_root: Some(B256::ZERO), ..Default::default() },
        env: block.evm_env(),
        withdrawals: Some(Default::default()),
        transactions: eip1559_envelopes(&block.txns)?,
    };
    let chain = EthSpec::mainnet();
    let config = blockstm_evm::adaptive_rules(Config::new(threads)?);
    let input = client.input();
    let expected = alloy_evm_block_access_list(&client.db, &chain, input.env, input.ctx, input.transactions)?;
    let builder = ExecuteOptions::parallel(config).with_block_access_list();
    let list = execute_block_with(&client.db, &chain, client.input(), builder)?
        .block_access_list
        .ok_or("no access list built")?;
    if block_access_list_rlp(&list) != block_access_list_rlp(&expected) {
        return Err(format!(
            "the list differs from revm's builder's: {}",
            BalDiff::between(&list, &expected)
        )
        .into());
    }
    let sequential = execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential())?;
    let driven = execute_block_from_access_list(&client.db, &chain, client.input(), &list, config)?;
    if (&driven.receipts, &driven.state) != (&sequential.receipts, &sequential.state) {
        return Err("execution from the list differs from sequential execution".into());
    }
    let names = ["sequential", "Block-STM", "Block-STM building the list", "from the list"];
    let mut times: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds.max(1) {
        for k in 0..4 {
            let run = (k + round) % 4;
            let start = Instant::now();
            let out = match run {
                0 => execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential()),
                1 => execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::parallel(config)),
                2 => execute_block_with(&client.db, &chain, client.input(), builder),
                _ => execute_block_from_access_list(&client.db, &chain, client.input(), &list, config),
            };
            times[run].push(start.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(out?);
        }
    }
    println!(
        "{workload:?}: {} transactions, {} accounts in the list, P = {threads}, {rounds} rounds, {} re-executions from the list",
        client.transactions.len(),
        list.len(),
        driven.stats.aborts
    );
    for (run, name) in names.iter().enumerate() {
        let ratios: Vec<f64> = times[0].iter().zip(&times[run]).map(|(s, t)| s / t).collect();
        let (min, max) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!(
            "{name:>28}: {:>9.3} ms  {:.3}x ({min:.2}..{max:.2})",
            median(times[run].clone()),
            median(ratios)
        );
    }
    Ok(())
}
