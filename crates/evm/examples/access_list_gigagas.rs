//! A gigagas block with its block-level access list (EIP-7928), through the client API at P
//! threads: sequential execution, Block-STM, Block-STM building the list, and execution from
//! the list, with alloy-evm's executor without and with revm's own access-list builder (the
//! reference cost of building the list), timed side by side (ROUNDS interleaved rounds, the order rotating; medians and the
//! per-round ratios to the sequential time). The list is checked against revm's builder first.
//!
//! `cargo run --release -p blockstm-evm --example access_list_gigagas -- eth-erc20 2 [ROUNDS]`

use alloy_consensus::Header;
use alloy_evm::eth::spec::EthSpec;
use alloy_primitives::B256;
use blockstm_evm::oracle::{
    alloy_evm_block_access_list, alloy_evm_block_indexed, cache_db, eip1559_envelopes,
};
use blockstm_evm::{
    BalDiff, BlockInput, ClientBlock, ExecuteOptions, Gigagas, block_access_list_rlp,
    execute_block_from_access_list, execute_block_with,
};
use blockstm_executor::Config;
use blockstm_workloads::measure::{Summary, ratio, rotate};
use std::collections::HashMap;
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let names = [
        "sequential",
        "Block-STM",
        "Block-STM building the list",
        "from the list",
        "alloy-evm, indexed",
        "alloy-evm, revm's builder",
    ];
    let time = |run: usize| -> Result<f64, String> {
        let start = Instant::now();
        let out = match run {
            0 => {
                execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential()).map(drop)
            }
            1 => execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::parallel(config))
                .map(drop),
            2 => execute_block_with(&client.db, &chain, client.input(), builder).map(drop),
            3 => execute_block_from_access_list(&client.db, &chain, client.input(), &list, config).map(drop),
            k => {
                let BlockInput { env, ctx, transactions } = client.input();
                alloy_evm_block_indexed(&client.db, &chain, env, ctx, transactions, k == 5)
                    .map_err(|e| format!("{}: {e}", names[k]))?;
                return Ok(start.elapsed().as_secs_f64() * 1e3);
            }
        };
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        out.map_err(|e| format!("{}: {e}", names[run]))?;
        Ok(elapsed)
    };
    let times: [Vec<f64>; 6] = rotate(rounds, time, || ())?;
    println!(
        "{workload:?}: {} transactions, {} accounts in the list, P = {threads}, {rounds} rounds, {} re-executions from the list",
        client.transactions.len(),
        list.len(),
        driven.stats.aborts
    );
    for (run, name) in names.iter().enumerate() {
        let speedup = ratio(&times[0], &times[run]);
        println!(
            "{name:>28}: {:>9.3} ms  {:.3}x ({:.2}..{:.2})",
            Summary::of(&mut times[run].clone()).median,
            speedup.median,
            speedup.min,
            speedup.max
        );
    }
    let cost = |with: usize, without: usize| (ratio(&times[with], &times[without]).median - 1.0) * 100.0;
    println!(
        "building the list costs Block-STM {:+.1} %; revm's builder costs alloy-evm {:+.1} %",
        cost(2, 1),
        cost(5, 4)
    );
    Ok(())
}
