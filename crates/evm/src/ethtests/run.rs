//! Running one test case: the canonical chain block by block on every executor, each block
//! checked against its header, the final state against the expected one, and every block that
//! must be rejected tried on top of its parent.

use super::client::{ClientCase, client_divergence};
use super::model::{DecodedBlock, TestBlock, TestBody, TestCase, TestHeader};
use super::rules::{self, Fork, Rejection};
use super::world;
use crate::chain::receipt_envelopes;
use crate::chain::{EthBlock, PreState, Withdrawal};
use crate::client::{ClientError, GasAllowance, dao_fork_writes};
use crate::fixture::RpcTx;
use crate::state::{AccountState, EvmKey, EvmValue, SlotValue};
use crate::vm::{EvmError, EvmReceipt};
use crate::{SpecId, adaptive_rules};
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Block, TxEnvelope};
use alloy_primitives::Address;
use alloy_primitives::Bytes;
use alloy_primitives::{B256, U256};
use blockstm_executor::{BlockError, BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use std::collections::HashMap;
use std::sync::Arc;

/// Which executors run every block, beside the sequential one that is the reference.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Thread counts of the parallel executor.
    pub threads: Vec<usize>,
    /// Whether each thread count runs with the adaptive rule on, off, or both.
    pub adaptive: Vec<bool>,
    /// Thread counts at which each valid block's access list (EIP-7928) is also built by
    /// Block-STM and the block executed from it, beside the sequential builder and the client
    /// API's run at the largest thread count (which builds it too).
    pub access_list_threads: Vec<usize>,
}

impl Default for RunOptions {
    /// 1, 2, 4 and 8 threads, the adaptive rule on and off; the access lists at 8 threads
    /// (every count costs the suite about a minute; `blockstm eth-tests` checks them at all).
    fn default() -> Self {
        Self { threads: vec![1, 2, 4, 8], adaptive: vec![true, false], access_list_threads: vec![8] }
    }
}

/// The verdict on one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held on every executor.
    Pass,
    /// A check failed: what, where.
    Fail(String),
    /// Not run, and why.
    Skip(String),
}

/// What became of the blocks a case expects to be rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvalidBlocks {
    /// Rejected for a reason of the class the test names (a transaction's, or the block's).
    pub rejected_as_expected: usize,
    /// Rejected, for a reason of the other class.
    pub rejected_otherwise: usize,
    /// Not rejected: the rule broken is a header-versus-parent or fork-choice rule this runner
    /// leaves to a node's consensus layer.
    pub left_to_consensus: usize,
}

/// The result of one test case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The test's name (its key in the file).
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The blocks it expects to be rejected.
    pub invalid: InvalidBlocks,
    /// Why each block left to the consensus layer was expected to be rejected.
    pub left_to_consensus: Vec<String>,
    /// Each rejected block: what the test expected and what the runner said.
    pub rejections: Vec<String>,
}

/// A block other blocks are built on: the state after it, its header, and the chain's total
/// difficulty up to it (which picks the fork of a transition by difficulty).
#[derive(Clone)]
pub(super) struct Parent {
    pub(super) state: PreState,
    header: TestHeader,
    total_difficulty: U256,
}

/// Cases of a rule revm 43 does not implement (nor, with it, alloy-evm's executor that clients
/// run), each with the reason; reported as skipped (docs/ethereum-tests.md).
const NOT_IMPLEMENTED: &[(&str, &str)] = &[(
    "RevertInCreateInInit_Paris_d0g0v0_Cancun",
    "EIP-7610 (a creation over an address holding storage but no code or nonce fails) is not \
     implemented by revm 43: no mainnet account is in that state, the EIP was declined for \
     Glamsterdam (EIP-7773) and its tests dropped from execution-specs",
)];

pub(crate) fn run_case(name: &str, case: &TestCase, options: &RunOptions) -> CaseResult {
    let mut result = CaseResult {
        name: name.to_owned(),
        verdict: Verdict::Pass,
        invalid: InvalidBlocks::default(),
        left_to_consensus: Vec::new(),
        rejections: Vec::new(),
    };
    if let Some((_, reason)) = NOT_IMPLEMENTED.iter().find(|(skipped, _)| *skipped == name) {
        result.verdict = Verdict::Skip((*reason).to_owned());
        return result;
    }
    let fork = match Fork::parse(&case.network) {
        Ok(fork) => fork,
        Err(reason) => {
            result.verdict = Verdict::Skip(reason);
            return result;
        }
    };
    result.verdict = match run_chain(case, &fork, options, &mut result) {
        Ok(()) => Verdict::Pass,
        Err(message) => Verdict::Fail(message),
    };
    result
}

fn run_chain(
    case: &TestCase,
    fork: &Fork,
    options: &RunOptions,
    result: &mut CaseResult,
) -> Result<(), String> {
    let genesis = &case.genesis_block_header;
    let pre = world::from_test(&case.pre)?;
    let root = world::state_root(&world::accounts(&pre));
    if root != genesis.state_root {
        return Err(format!("genesis state root {root} expected {}", genesis.state_root));
    }
    // The canonical chain: from the last block back to the genesis through parent hashes.
    let by_hash: HashMap<B256, (&TestBlock, &TestHeader)> = case
        .blocks
        .iter()
        .filter_map(|block| block.block_header.as_ref().map(|header| (header.hash, (block, header))))
        .collect();
    let mut chain = Vec::new();
    let mut at = case.lastblockhash;
    while at != genesis.hash {
        let block =
            by_hash.get(&at).ok_or_else(|| format!("canonical block {at} is not among the blocks"))?;
        chain.push(*block);
        at = block.1.parent_hash;
        if chain.len() > case.blocks.len() {
            return Err("the parent hashes from lastblockhash form a cycle".into());
        }
    }
    chain.reverse();

    // States, headers and total difficulties of the canonical blocks by hash, for blocks
    // built on them.
    let mut states: HashMap<B256, Parent> = HashMap::new();
    let mut parent = Parent { state: pre, header: genesis.clone(), total_difficulty: genesis.difficulty };
    states.insert(genesis.hash, parent.clone());
    let mut hashes: HashMap<u64, B256> = HashMap::from([(genesis.number, genesis.hash)]);
    for &(block, header) in &chain {
        hashes.insert(header.number, header.hash);
        let state = execute(&parent, header, &block.rlp, &block.body, fork, &hashes, options).map_err(
            |rejection| format!("block {} ({}): rejected: {rejection}", header.number, header.hash),
        )?;
        let total_difficulty = parent.total_difficulty + header.difficulty;
        parent = Parent { state, header: header.clone(), total_difficulty };
        states.insert(header.hash, parent.clone());
    }
    let state = parent.state;

    // Blocks that must be rejected, each on top of its parent.
    for (i, block) in case.blocks.iter().enumerate() {
        let Some(expected) = &block.expect_exception else { continue };
        let decoded = match block.rlp_decoded.clone().map(serde_json::from_value::<DecodedBlock>) {
            Some(Ok(decoded)) => Some(decoded),
            Some(Err(e)) => {
                // A field out of range (an address or an amount too long): rejected on decoding.
                result
                    .rejections
                    .push(format!("block {i} (expected {expected}): a field does not decode: {e}"));
                result.invalid.rejected_as_expected += usize::from(expected.contains("BlockException"));
                result.invalid.rejected_otherwise += usize::from(!expected.contains("BlockException"));
                continue;
            }
            None => None,
        };
        let (header, body) = match (&block.block_header, &decoded) {
            (Some(header), _) => (header, &block.body),
            (None, Some(decoded)) => (&decoded.block_header, &decoded.body),
            (None, None) => {
                // The block's RLP does not decode: rejected before execution.
                result.rejections.push(format!("block {i} (expected {expected}): its RLP does not decode"));
                result.invalid.rejected_as_expected += usize::from(expected.contains("BlockException"));
                result.invalid.rejected_otherwise += usize::from(!expected.contains("BlockException"));
                continue;
            }
        };
        let Some(parent) = states.get(&header.parent_hash) else {
            // Its parent is not a block this chain accepted: rejected as an unknown parent.
            result
                .rejections
                .push(format!("block {i} (expected {expected}): unknown parent {}", header.parent_hash));
            result.invalid.rejected_as_expected += usize::from(expected.contains("BlockException"));
            result.invalid.rejected_otherwise += usize::from(!expected.contains("BlockException"));
            continue;
        };
        let mut hashes = hashes.clone();
        hashes.retain(|number, _| *number < header.number);
        match execute(parent, header, &block.rlp, body, fork, &hashes, options) {
            Ok(_) => {
                result.invalid.left_to_consensus += 1;
                result.left_to_consensus.push(format!("block {i} ({expected})"));
            }
            Err(Rejection::Divergence(message)) => return Err(format!("invalid block {i}: {message}")),
            Err(rejection) => {
                result.rejections.push(format!("block {i} (expected {expected}): {rejection}"));
                if rejection.is_transaction() == expected.contains("TransactionException") {
                    result.invalid.rejected_as_expected += 1;
                } else {
                    result.invalid.rejected_otherwise += 1;
                }
            }
        }
    }

    // The final state.
    let actual = world::accounts(&state);
    if let Some(post) = &case.post_state {
        let expected = world::accounts(&world::from_test(post)?);
        if let Some(difference) = world::first_difference(&actual, &expected) {
            return Err(format!("post-state: {difference}"));
        }
    } else if let Some(expected) = case.post_state_hash {
        let root = world::state_root(&actual);
        if root != expected {
            return Err(format!("post-state root {root} expected {expected}"));
        }
    }
    Ok(())
}

/// Executes a block on `state` with the sequential executor and every parallel one, checks
/// that they agree, and checks the result against the header. A rejection names the rule;
/// [`Rejection::Divergence`] is a failure of ours, not of the block.
fn execute(
    parent: &Parent,
    header: &TestHeader,
    rlp: &Bytes,
    body: &TestBody,
    fork: &Fork,
    hashes: &HashMap<u64, B256>,
    options: &RunOptions,
) -> Result<PreState, Rejection> {
    let spec = fork.spec_at(header.number, header.timestamp, parent.total_difficulty);
    let TestBody { transactions: txns, uncle_headers: ommers, withdrawals } = body;
    rules::check_header(header, &parent.header, ommers, spec)?;
    rules::check_dao_extra_data(header, ommers, fork)?;
    let decoded = rules::decode_body(rlp)?;
    let txns = with_senders(txns, &decoded, spec)?;
    let senders: Vec<Option<Address>> = txns.iter().map(RpcTx::sender).collect();
    let txns = txns
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            tx.to_env().map_err(|(field, message)| Rejection::Transaction {
                txn_idx: i,
                rule: format!("{field}: {message}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules::check_blobs(header, &txns, spec)?;
    let mut pre_state = parent.state.clone();
    if fork.is_dao_fork(header.number) {
        // Before the transactions, as geth (and the tests' gas figures) have it.
        let writes = dao_fork_writes(&pre_state).map_err(|e| Rejection::Divergence(e.to_string()))?;
        pre_state.extend(writes);
    }
    if spec.is_enabled_in(SpecId::CANCUN) {
        let root = header.parent_beacon_block_root.unwrap_or_default();
        store_beacon_root(&mut pre_state, header.timestamp, root).map_err(Rejection::Divergence)?;
    }
    let block_header = header.to_block_header(ommers.len());
    let withdrawals: Vec<Withdrawal> = withdrawals
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|w| Withdrawal { address: w.address, gwei: w.amount })
        .collect();
    let block = EthBlock::new(block_header, txns, withdrawals, pre_state)
        .with_spec(spec)
        .with_block_hashes(Arc::new(hashes.clone()))
        .with_ommers(ommers.iter().map(|ommer| (ommer.number, ommer.coinbase)).collect());
    let gas_limits: Vec<u64> = block.txns.iter().map(|tx| tx.0.gas_limit).collect();

    // The reference: the sequential executor.
    let vm = block.vm();
    let run = |executor: &dyn Fn(&mut GasAllowance) -> Outcome| {
        let mut allowance = GasAllowance::new(header.gas_limit, &gas_limits);
        let outcome = executor(&mut allowance);
        (outcome, allowance.exceeded)
    };
    let reference = run(&|hook| {
        SequentialExecutor::new(vm.clone())
            .execute_block_with_hook(&block.pre_state, &block.txns, &mut |i, r: &EvmReceipt| {
                hook.on_commit(i, r)
            })
            .map(|out| (out.outputs, out.state))
    });
    for &threads in &options.threads {
        for &adaptive in &options.adaptive {
            let Ok(config) = Config::new(threads) else { continue };
            let config = adaptive_rules(config.with_adaptive(adaptive));
            let parallel = ParallelExecutor::new(vm.clone(), config);
            let outcome = run(&|hook| {
                parallel
                    .execute_block_with_hook(&block.pre_state, &block.txns, &mut |i, r: &EvmReceipt| {
                        hook.on_commit(i, r)
                    })
                    .map(|out| (out.outputs, out.state))
            });
            if outcome != reference {
                return Err(Rejection::Divergence(format!(
                    "block {}: the parallel executor at {threads} threads (adaptive {adaptive}) differs from the sequential one: {}",
                    header.number,
                    describe_difference(&outcome, &reference)
                )));
            }
        }
    }
    let (outcome, exceeded) = reference;
    // The same block through the client API, from the parent's state in revm's database.
    let case = ClientCase::new(parent, hashes, &block, header, &decoded, &senders, fork);
    let client = case.run(options);
    let agrees = |ok: bool| if ok { Ok(()) } else { Err(client_divergence(header.number, &client)) };
    if let Some(txn_idx) = exceeded {
        agrees(
            matches!(&client, Some(Err(ClientError::BlockGasExceeded { txn_idx: i, .. })) if *i == txn_idx),
        )?;
        return Err(Rejection::Transaction {
            txn_idx,
            rule: format!("gas limit {} above the block's remaining gas", gas_limits[txn_idx]),
        });
    }
    let (receipts, changes) = match outcome {
        Ok(result) => result,
        Err(BlockError::Vm { txn_idx, error: EvmError::InvalidTransaction(rule) }) => {
            agrees(matches!(&client, Some(Err(ClientError::Block(BlockError::Vm {
                txn_idx: i,
                error: EvmError::InvalidTransaction(_),
            }))) if *i == txn_idx))?;
            return Err(Rejection::Transaction { txn_idx, rule });
        }
        Err(BlockError::Vm { txn_idx, error: EvmError::InvalidHeader(rule) }) => {
            agrees(matches!(&client, Some(Err(ClientError::Block(BlockError::Vm {
                txn_idx: i,
                error: EvmError::InvalidHeader(_),
            }))) if *i == txn_idx))?;
            return Err(Rejection::Block(format!(
                "transaction {txn_idx}: invalid block environment: {rule}"
            )));
        }
        Err(error) => return Err(Rejection::Divergence(format!("block {}: {error}", header.number))),
    };
    rules::check_body(header, &decoded, spec)?;
    block.check_header(&receipts).map_err(|mismatch| Rejection::Block(mismatch.to_string()))?;
    let post = block.post_state(&changes).map_err(Rejection::Divergence)?;
    let state = world::next_block_state(post);
    if let Some(client) = &client {
        let Ok(run) = client else {
            return Err(client_divergence(header.number, &Some(client.as_ref().map(|_| ()))));
        };
        let (client_receipts, client_state) = (&run.receipts, &run.state);
        if *client_receipts != receipt_envelopes(&receipts) {
            return Err(Rejection::Divergence(format!(
                "block {}: the client API's receipts differ",
                header.number
            )));
        }
        let (ours, theirs) = (world::accounts(&state), world::accounts(client_state));
        if let Some(difference) = world::first_difference(&theirs, &ours) {
            return Err(Rejection::Divergence(format!(
                "block {}: the client API's state differs: {difference}",
                header.number
            )));
        }
        if let Some(difference) = case.alloy_evm_disagreement(run, options) {
            return Err(Rejection::Divergence(format!(
                "block {}: alloy-evm's block executor disagrees: {difference}",
                header.number
            )));
        }
    }
    let root = world::state_root(&world::accounts(&state));
    if root != header.state_root {
        return Err(Rejection::Block(format!("state root {root}, header says {}", header.state_root)));
    }
    Ok(state)
}

/// `txns` with every sender known: a test leaves out the senders it could not print, which
/// are then recovered from the signatures of the block's RLP (high `s` values only before
/// Homestead).
fn with_senders(txns: &[RpcTx], block: &Block<TxEnvelope>, spec: SpecId) -> Result<Vec<RpcTx>, Rejection> {
    let mut txns = txns.to_vec();
    if txns.iter().all(|tx| tx.sender().is_some()) {
        return Ok(txns);
    }
    if block.body.transactions.len() != txns.len() {
        return Err(Rejection::Block("the block's RLP and its transactions disagree".into()));
    }
    for (i, (tx, signed)) in txns.iter_mut().zip(&block.body.transactions).enumerate() {
        if tx.sender().is_some() {
            continue;
        }
        let sender = if spec.is_enabled_in(SpecId::HOMESTEAD) {
            signed.recover_signer()
        } else {
            signed.recover_signer_unchecked()
        };
        let sender = sender.map_err(|e| Rejection::Transaction {
            txn_idx: i,
            rule: format!("the signature does not recover: {e}"),
        })?;
        tx.set_sender(sender);
    }
    Ok(txns)
}

type Outcome = Result<(Vec<EvmReceipt>, Vec<(EvmKey, EvmValue)>), BlockError<EvmError>>;

fn describe_difference(actual: &(Outcome, Option<usize>), expected: &(Outcome, Option<usize>)) -> String {
    match (&actual.0, &expected.0) {
        (Ok((receipts, _)), Ok((want, _))) if receipts != want => {
            let i =
                receipts.iter().zip(want).position(|(a, b)| a != b).unwrap_or(receipts.len().min(want.len()));
            format!("receipt {i}: {:?} against {:?}", receipts.get(i), want.get(i))
        }
        (Ok((_, state)), Ok((_, want))) if state != want => {
            let i = state.iter().zip(want).position(|(a, b)| a != b).unwrap_or(state.len().min(want.len()));
            format!("final state entry {i}: {:?} against {:?}", state.get(i), want.get(i))
        }
        (Ok(_), Ok(_)) => format!("gas allowance {:?} against {:?}", actual.1, expected.1),
        (a, b) => format!("{:?} against {:?}", a.as_ref().err(), b.as_ref().err()),
    }
}

/// EIP-4788: before the transactions of a Cancun block, the beacon-roots contract stores the
/// block's timestamp and its parent beacon block root in its ring buffer. Written here as the
/// contract's effect on its storage, only when the contract's code is the canonical one.
pub(crate) fn store_beacon_root(state: &mut PreState, timestamp: u64, root: B256) -> Result<(), String> {
    use alloy_eips::eip4788::BEACON_ROOTS_ADDRESS;
    const HISTORY_BUFFER_LENGTH: u64 = 8191;
    let Some(EvmValue::Account(AccountState { info: Some(info), .. })) =
        state.get(&EvmKey::Account(BEACON_ROOTS_ADDRESS))
    else {
        return Ok(());
    };
    if info.code_hash != rules::beacon_roots_code_hash() {
        return Err(format!(
            "the beacon-roots contract's code is not the canonical one ({})",
            info.code_hash
        ));
    }
    let timestamp_idx = timestamp % HISTORY_BUFFER_LENGTH;
    for (slot, value) in [
        (U256::from(timestamp_idx), U256::from(timestamp)),
        (U256::from(timestamp_idx + HISTORY_BUFFER_LENGTH), U256::from_be_bytes(root.0)),
    ] {
        state.insert(
            EvmKey::Storage(BEACON_ROOTS_ADDRESS, slot),
            EvmValue::Storage(SlotValue { value, epoch: 0 }),
        );
    }
    Ok(())
}
