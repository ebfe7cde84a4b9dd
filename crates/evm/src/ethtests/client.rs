//! Each block of the blockchain tests through the client API ([`execute_block`]) as a client
//! runs it, through alloy-evm's block executor (the independent oracle), and through the
//! executor factory alloy-evm-based clients hold, for the runner's cross-checks; and its
//! block-level access list, built and executed from.

use super::model::TestHeader;
use super::rules::{BlockForks, Fork, Rejection};
use super::run::{Parent, RunOptions};
use super::world;
use crate::bal::{BlockAccessList, block_access_list_rlp};
use crate::bal_driven::execute_block_from_access_list;
use crate::chain::{EthBlock, PreState};
use crate::client::{BlockInput, ClientError, ExecuteOptions, execute_block_with};
use crate::factory::BlockStmExecutorFactory;
use crate::oracle;
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Block, ReceiptEnvelope, TxEnvelope};
use alloy_evm::eth::EthBlockExecutionCtx;
use alloy_primitives::{Address, B256};
use blockstm_executor::Config;
use revm::database::{CacheDB, EmptyDB};
use revm::state::EvmState;
use std::borrow::Cow;
use std::collections::HashMap;

pub(super) type ClientOutcome = Result<ClientRun, ClientError>;

/// What the client API produced for a block.
pub(super) struct ClientRun {
    pub(super) receipts: Vec<ReceiptEnvelope>,
    gas_used: u64,
    /// Its changes, as it returned them.
    changes: EvmState,
    /// The parent's state with them applied.
    pub(super) state: PreState,
    /// The block-level access list it built.
    block_access_list: Option<BlockAccessList>,
}

/// One block as the client API and alloy-evm's block executor take it.
pub(super) struct ClientCase<'a> {
    parent: &'a Parent,
    block: &'a EthBlock,
    header: &'a TestHeader,
    decoded: &'a Block<TxEnvelope>,
    fork: &'a Fork,
    /// The database and transactions a client holds ([`ClientCase::inputs`]), built once.
    inputs: Option<(CacheDB<EmptyDB>, Vec<Recovered<TxEnvelope>>)>,
}

impl<'a> ClientCase<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        parent: &'a Parent,
        hashes: &'a HashMap<u64, B256>,
        block: &'a EthBlock,
        header: &'a TestHeader,
        decoded: &'a Block<TxEnvelope>,
        senders: &'a [Option<Address>],
        fork: &'a Fork,
    ) -> Self {
        let inputs = Self::inputs(parent, hashes, decoded, senders);
        Self { parent, block, header, decoded, fork, inputs }
    }

    /// The parent's state in revm's in-memory database and the transactions decoded from the
    /// block's RLP with their senders; `None` when the RLP and the JSON disagree on the
    /// transactions (the RLP's are what a client executes).
    fn inputs(
        parent: &Parent,
        hashes: &HashMap<u64, B256>,
        decoded: &Block<TxEnvelope>,
        senders: &[Option<Address>],
    ) -> Option<(CacheDB<EmptyDB>, Vec<Recovered<TxEnvelope>>)> {
        let txns = &decoded.body.transactions;
        if txns.len() != senders.len() {
            return None;
        }
        let transactions = txns
            .iter()
            .zip(senders)
            .map(|(tx, sender)| Some(Recovered::new_unchecked(tx.clone(), (*sender)?)))
            .collect::<Option<_>>()?;
        Some((oracle::cache_db(&parent.state, hashes), transactions))
    }

    /// The block's execution context as alloy-evm takes it.
    fn ctx(&self) -> EthBlockExecutionCtx<'_> {
        let body = &self.decoded.body;
        EthBlockExecutionCtx {
            parent_hash: self.header.parent_hash,
            parent_beacon_block_root: self.header.parent_beacon_block_root,
            ommers: &body.ommers,
            withdrawals: body.withdrawals.as_ref().map(|w| Cow::Borrowed(w.as_slice())),
            extra_data: self.header.extra_data.clone(),
            tx_count_hint: Some(body.transactions.len()),
            slot_number: None,
        }
    }

    /// A chain specification of the block's forks.
    fn forks(&self) -> BlockForks {
        let number = self.header.number;
        BlockForks { spec: self.block.spec(), number, dao: self.fork.is_dao_fork(number) }
    }

    /// The block through the client API ([`execute_block`]) at the largest thread count of
    /// `options`.
    pub(super) fn run(&self, options: &RunOptions) -> Option<ClientOutcome> {
        let (db, transactions) = self.inputs.as_ref()?;
        let config = Config::new(options.threads.iter().copied().max().unwrap_or(2)).ok()?;
        let input = BlockInput { env: self.block.evm_env(), ctx: self.ctx(), transactions };
        let options = ExecuteOptions::parallel(config).with_block_access_list();
        Some(execute_block_with(db, &self.forks(), input, options).map(|out| ClientRun {
            receipts: out.receipts,
            gas_used: out.gas_used,
            state: world::apply_evm_state(&self.parent.state, &out.state),
            changes: out.state,
            block_access_list: out.block_access_list,
        }))
    }

    /// Where alloy-evm's `EthBlockExecutor` (the independent oracle) disagrees with the client
    /// API's `run` of the block, or with [`BlockStmExecutorFactory`] driven as a client drives
    /// it at the largest thread count of `options`: receipts, gas used, or the state once
    /// committed into revm's `State`. Not asked on the DAO fork's block: alloy-evm 0.39 drains
    /// the DAO accounts after the transactions, where geth and the tests drain them before.
    pub(super) fn alloy_evm_disagreement(&self, run: &ClientRun, options: &RunOptions) -> Option<String> {
        if self.fork.is_dao_fork(self.header.number) {
            return None;
        }
        let (db, transactions) = self.inputs.as_ref()?;
        let env = self.block.evm_env();
        let expected = match oracle::alloy_evm_block(db, &self.forks(), env.clone(), self.ctx(), transactions)
        {
            Ok(expected) => expected,
            Err(e) => return Some(format!("alloy-evm rejects the block: {e}")),
        };
        if expected.receipts != run.receipts || expected.gas_used != run.gas_used {
            return Some(format!(
                "receipts or gas used ({} against alloy-evm's {})",
                run.gas_used, expected.gas_used
            ));
        }
        let actual = oracle::committed(db, run.changes.clone());
        if let Some(difference) = oracle::bundle_difference(db, &expected.bundle, &actual) {
            return Some(difference);
        }
        let config = Config::new(options.threads.iter().copied().max().unwrap_or(2)).ok()?;
        let factory = BlockStmExecutorFactory::new(self.forks(), config);
        let through = match oracle::through_factory(&factory, db, env, self.ctx(), transactions) {
            Ok(through) => through,
            Err(e) => return Some(format!("the executor factory rejects the block: {e}")),
        };
        if (&through.receipts, through.gas_used) != (&expected.receipts, expected.gas_used) {
            return Some(format!(
                "the executor factory's receipts or gas used ({} against alloy-evm's {})",
                through.gas_used, expected.gas_used
            ));
        }
        if let Some(difference) = oracle::bundle_difference(db, &expected.bundle, &through.bundle) {
            return Some(format!("the executor factory: {difference}"));
        }
        self.access_list_disagreement(run, options, &expected)
    }

    /// Where the block-level access list the client API builds (sequentially, at the largest
    /// thread count, and at each of `options.access_list_threads` with the adaptive rule off)
    /// differs from the one revm's sequential builder records under alloy-evm's block
    /// executor, byte for byte; or where executing the block from that list at each of
    /// `options.access_list_threads` differs from the client API's result, or through the
    /// executor factory (at the largest, the adaptive rule off) from alloy-evm's `oracle`.
    fn access_list_disagreement(
        &self,
        run: &ClientRun,
        options: &RunOptions,
        oracle: &oracle::OracleBlock,
    ) -> Option<String> {
        let (db, transactions) = self.inputs.as_ref()?;
        let env = self.block.evm_env();
        let expected = match oracle::alloy_evm_block_access_list(
            db,
            &self.forks(),
            env.clone(),
            self.ctx(),
            transactions,
        ) {
            Ok(expected) => expected,
            Err(e) => return Some(format!("alloy-evm rejects the block when building its access list: {e}")),
        };
        let expected_rlp = block_access_list_rlp(&expected);
        let differs = |name: &str, ours: Option<&BlockAccessList>| match ours {
            None => Some(format!("the client API at {name} built no access list")),
            Some(ours) if block_access_list_rlp(ours) != expected_rlp => Some(format!(
                "the access list at {name} differs from revm's builder's: {}",
                alloy_eip7928::BalDiff::between(ours, &expected)
            )),
            Some(_) => None,
        };
        let largest = options.threads.iter().copied().max().unwrap_or(2);
        if let Some(difference) = differs(&format!("{largest} threads"), run.block_access_list.as_ref()) {
            return Some(difference);
        }
        let mut others: Vec<(String, ExecuteOptions)> =
            vec![("sequential".into(), ExecuteOptions::sequential())];
        for &threads in options.access_list_threads.iter().filter(|&&t| t != largest) {
            let config = Config::new(threads).ok()?.with_adaptive(false);
            others.push((format!("{threads} threads"), ExecuteOptions::parallel(config)));
        }
        for (name, options) in others {
            let input = BlockInput { env: env.clone(), ctx: self.ctx(), transactions };
            let out = match execute_block_with(db, &self.forks(), input, options.with_block_access_list()) {
                Ok(out) => out,
                Err(e) => return Some(format!("the client API at {name} rejects the block: {e}")),
            };
            if let Some(difference) = differs(&name, out.block_access_list.as_ref()) {
                return Some(difference);
            }
        }
        // Executed from the list: the client API's result, each transaction executed once.
        for &threads in &options.access_list_threads {
            let config = Config::new(threads).ok()?;
            let input = BlockInput { env: env.clone(), ctx: self.ctx(), transactions };
            let out = match execute_block_from_access_list(db, &self.forks(), input, &expected, config) {
                Ok(out) => out,
                Err(e) => return Some(format!("executed from its access list at {threads} threads: {e}")),
            };
            if (&out.receipts, out.gas_used, &out.state) != (&run.receipts, run.gas_used, &run.changes) {
                return Some(format!(
                    "executed from its access list at {threads} threads: the result differs"
                ));
            }
            if out.stats.executions != transactions.len() {
                return Some(format!(
                    "executed from its access list at {threads} threads: {} executions of {} transactions",
                    out.stats.executions,
                    transactions.len()
                ));
            }
        }
        let config = Config::new(largest).ok()?.with_adaptive(false);
        let factory = BlockStmExecutorFactory::new(self.forks(), config);
        let through = match oracle::through_factory_from_access_list(
            &factory,
            db,
            env,
            self.ctx(),
            transactions,
            &expected,
        ) {
            Ok(through) => through,
            Err(e) => {
                return Some(format!("the executor factory rejects the block from its access list: {e}"));
            }
        };
        if (&through.receipts, through.gas_used) != (&oracle.receipts, oracle.gas_used) {
            return Some("the executor factory from the access list: receipts or gas used differ".into());
        }
        if let Some(difference) = oracle::bundle_difference(db, &oracle.bundle, &through.bundle) {
            return Some(format!("the executor factory from the access list: {difference}"));
        }
        None
    }
}

pub(super) fn client_divergence<T>(
    number: u64,
    client: &Option<Result<T, impl std::fmt::Display>>,
) -> Rejection {
    let what = match client {
        None => "was not run".to_owned(),
        Some(Ok(_)) => "accepted the block".to_owned(),
        Some(Err(e)) => format!("said: {e}"),
    };
    Rejection::Divergence(format!("block {number}: the client API disagrees with the executors: it {what}"))
}
