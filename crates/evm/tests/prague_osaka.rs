//! Prague and Osaka blocks built in code, executed by the client API at 1, 2, 4 and 8 threads
//! and by alloy-evm's sequential `EthBlockExecutor` (the oracle): the receipts, gas and blob
//! gas used, EIP-7685 requests and post-state must be the same.
//!
//! The mainnet corpus and the blockchain tests stop at Cancun, so this is where the Prague and
//! Osaka paths are checked: the system contracts deployed (EIP-4788 beacon roots, EIP-2935
//! history, EIP-7002 withdrawal and EIP-7251 consolidation requests, and a deposit contract
//! emitting EIP-6110 deposit events), transactions reading what the pre-execution system calls
//! wrote, blob transactions, and EIP-7702 set-code authorizations: delegations, a
//! self-sponsored one, a re-delegation and a cleared delegation in the middle of the block, a
//! delegated account called by many transactions (one long conflict chain), called from a
//! contract and sending a transaction itself, a delegation to a delegated account, and invalid
//! authorizations, which the block skips as EIP-7702 says (wrong chain, wrong nonce, nonce at
//! its maximum, an authority with code).
//!
//! Each block also goes through `BlockStmExecutorFactory` (alloy-evm's executor traits) at
//! every thread count, validated as a client validates a block, and once transaction by
//! transaction, as a block builder drives it.
//!
//! The Osaka block runs on the Prague block's post-state, as the next block of the chain.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{
    Header, Signed, TxEip1559, TxEip4844, TxEip4844Variant, TxEip7702, TxEnvelope, TxLegacy,
};
use alloy_eips::eip2935::{HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE};
use alloy_eips::eip4788::{BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE};
use alloy_eips::eip4895::Withdrawal;
use alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS;
use alloy_eips::eip7002::{WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_CODE};
use alloy_eips::eip7251::{CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_CODE};
use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_eips::eip7840::BlobParams;
use alloy_evm::EvmEnv;
use alloy_evm::EvmFactory;
use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::eip6110::DepositEvent;
use alloy_evm::eth::{EthBlockExecutionCtx, spec::EthSpec};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use alloy_sol_types::SolEvent;
use blockstm_evm::oracle::{
    OracleBlock, alloy_evm_block, alloy_evm_block_access_list, bundle_difference, committed, through_factory,
    through_factory_from_access_list, through_factory_with_access_list,
};
use blockstm_evm::{
    BlockExecution, BlockInput, BlockStmExecutorFactory, block_access_list_rlp, execute_block,
};
use blockstm_executor::Config;
use k256::ecdsa::SigningKey;
use revm::DatabaseCommit;
use revm::bytecode::Bytecode;
use revm::database::State;
use revm::database::states::bundle_state::BundleRetention;
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::DatabaseRef;
use revm::state::AccountInfo;
use std::borrow::Cow;
use std::collections::HashMap;

const CHAIN_ID: u64 = 1;
const GWEI: u128 = 1_000_000_000;
/// Block 1 under Prague, block 2 under Osaka (mainnet's schedule: Osaka at 1 764 798 551,
/// BPO1 at 1 765 290 071).
const PRAGUE_TIME: u64 = 1_764_000_000;
const OSAKA_TIME: u64 = 1_765_000_000;
const FIRST_NUMBER: u64 = 23_000_000;
const SENDERS: usize = 40;

/// Increments slot 0 of the account it runs as, and logs its caller.
const COUNTER: &str = "5f546001015f55335f5260205fa000";
/// Adds 2 to slot 0 and stores the call's value in slot 1.
const COUNTER_BY_TWO: &str = "5f546002015f553460015500";

fn code(hex: &str) -> Bytes {
    Bytes::from(alloy_primitives::hex::decode(hex).expect("test bytecode is hex"))
}

/// Passes its calldata to `target` (a static call) and stores the first word returned in
/// slot 0: reads what a system call wrote.
fn probe(target: Address) -> Bytes {
    code(&format!("365f5f3760205f365f73{target:x}5afa505f515f5500"))
}

/// Calls `target` with no data and no value.
fn caller_of(target: Address) -> Bytes {
    code(&format!("5f5f5f5f5f73{target:x}5af15000"))
}

/// Emits its calldata as a deposit event (the deposit contract's log, without its checks).
fn deposit_contract() -> Bytes {
    code(&format!("365f5f377f{:x}365fa100", DepositEvent::SIGNATURE_HASH))
}

/// A key of the test chain.
fn key(role: &str, i: usize) -> SigningKey {
    let seed = keccak256(format!("{role} {i}"));
    SigningKey::from_slice(seed.as_slice()).expect("a hash is a valid key")
}

fn address(key: &SigningKey) -> Address {
    Address::from_private_key(key)
}

/// `key`'s authorization to run `target`'s code, at its nonce `nonce`, on chain `chain_id`.
fn authorize(key: &SigningKey, chain_id: u64, target: Address, nonce: u64) -> SignedAuthorization {
    let auth = Authorization { chain_id: U256::from(chain_id), address: target, nonce };
    let (sig, recid) = key.sign_prehash_recoverable(auth.signature_hash().as_slice()).expect("signs");
    auth.into_signed(Signature::from((sig, recid)))
}

/// A block's transactions as they are added, with each sender's next nonce.
struct Txns {
    nonces: HashMap<Address, u64>,
    txns: Vec<Recovered<TxEnvelope>>,
}

impl Txns {
    fn new(nonces: HashMap<Address, u64>) -> Self {
        Self { nonces, txns: Vec::new() }
    }

    fn nonce(&mut self, from: Address) -> u64 {
        let nonce = self.nonces.entry(from).or_default();
        *nonce += 1;
        *nonce - 1
    }

    /// `tx` from `from`, as the `envelope` variant (signature not checked: the sender is
    /// given), hashed by its position.
    fn push<T>(&mut self, from: Address, tx: T, envelope: impl FnOnce(Signed<T>) -> TxEnvelope) {
        let hash = B256::from(U256::from(self.txns.len()));
        let signed = Signed::new_unchecked(tx, Signature::test_signature(), hash);
        self.txns.push(Recovered::new_unchecked(envelope(signed), from));
    }

    fn call(&mut self, from: Address, to: TxKind, value: u64, input: Bytes, gas_limit: u64) {
        let tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: self.nonce(from),
            gas_limit,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::from(value),
            input,
            ..Default::default()
        };
        self.push(from, tx, TxEnvelope::Eip1559);
    }

    fn legacy(&mut self, from: Address, to: Address, value: u64) {
        let tx = TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: self.nonce(from),
            gas_price: 2 * GWEI,
            gas_limit: 60_000,
            to: TxKind::Call(to),
            value: U256::from(value),
            ..Default::default()
        };
        self.push(from, tx, TxEnvelope::Legacy);
    }

    fn blob(&mut self, from: Address, to: Address, blobs: u8) {
        let tx = TxEip4844 {
            chain_id: CHAIN_ID,
            nonce: self.nonce(from),
            gas_limit: 100_000,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::from(1),
            blob_versioned_hashes: (0..blobs).map(versioned_hash).collect(),
            max_fee_per_blob_gas: 100,
            ..Default::default()
        };
        self.push(from, TxEip4844Variant::TxEip4844(tx), TxEnvelope::Eip4844);
    }

    /// A set-code transaction; each valid authorization of `auths` is signed at the nonce this
    /// builder expects (after the transaction's own nonce, for a self-sponsored one), which it
    /// then advances; a skipped one carries its own.
    fn set_code(&mut self, from: Address, to: Address, value: u64, auths: Vec<Auth<'_>>) {
        let nonce = self.nonce(from);
        let authorization_list = auths
            .into_iter()
            .map(|auth| match auth {
                Auth::Valid(key, target) => {
                    let authority = address(key);
                    authorize(key, CHAIN_ID, target, self.nonce(authority))
                }
                Auth::AnyChain(key, target) => {
                    let authority = address(key);
                    authorize(key, 0, target, self.nonce(authority))
                }
                Auth::Skipped(key, chain_id, target, nonce) => authorize(key, chain_id, target, nonce),
            })
            .collect();
        let tx = TxEip7702 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 500_000,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::from(value),
            authorization_list,
            ..Default::default()
        };
        self.push(from, tx, TxEnvelope::Eip7702);
    }
}

/// A KZG versioned hash (EIP-4844's version byte 1) ending in `i`.
fn versioned_hash(i: u8) -> B256 {
    let mut hash = B256::with_last_byte(i);
    hash.0[0] = 1;
    hash
}

/// An authorization of a set-code transaction.
enum Auth<'a> {
    /// Valid: the authority's key, its new code's address.
    Valid(&'a SigningKey, Address),
    /// Valid on every chain (chain id 0).
    AnyChain(&'a SigningKey, Address),
    /// Signed with this chain id and nonce: invalid, skipped by the block.
    Skipped(&'a SigningKey, u64, Address, u64),
}

/// The accounts of the test chain.
struct World {
    senders: Vec<Address>,
    /// Authorities (EOAs that delegate).
    keys: Vec<SigningKey>,
    counter: Address,
    counter_by_two: Address,
    history_probe: Address,
    beacon_probe: Address,
    /// An EOA key whose address holds code (an authority EIP-7702 must skip).
    with_code: SigningKey,
}

impl World {
    fn authority(&self, i: usize) -> Address {
        address(&self.keys[i])
    }
}

fn genesis() -> (CacheDB<EmptyDB>, World) {
    let mut db = CacheDB::new(EmptyDB::default());
    let ether = U256::from(10).pow(U256::from(18));
    let deploy = |db: &mut CacheDB<EmptyDB>, address: Address, code: Bytes| {
        let code = Bytecode::new_raw(code);
        db.insert_account_info(address, AccountInfo::default().with_nonce(1).with_code(code));
    };
    deploy(&mut db, BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE.clone());
    deploy(&mut db, HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE.clone());
    deploy(&mut db, WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_CODE.clone());
    deploy(&mut db, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_CODE.clone());
    deploy(&mut db, MAINNET_DEPOSIT_CONTRACT_ADDRESS, deposit_contract());
    let contract = |i: u8| Address::repeat_byte(0xc0 + i);
    let (counter, counter_by_two, history_probe, beacon_probe) =
        (contract(1), contract(2), contract(3), contract(4));
    deploy(&mut db, counter, code(COUNTER));
    deploy(&mut db, counter_by_two, code(COUNTER_BY_TWO));
    deploy(&mut db, history_probe, probe(HISTORY_STORAGE_ADDRESS));
    deploy(&mut db, beacon_probe, probe(BEACON_ROOTS_ADDRESS));
    let senders: Vec<Address> = (0..SENDERS).map(|i| address(&key("sender", i))).collect();
    let keys: Vec<SigningKey> = (0..6).map(|i| key("authority", i)).collect();
    for account in senders.iter().copied().chain(keys.iter().map(address)) {
        db.insert_account_info(account, AccountInfo::from_balance(ether * U256::from(100)));
    }
    let with_code = key("with code", 0);
    deploy(&mut db, address(&with_code), code(COUNTER));
    let world = World { senders, keys, counter, counter_by_two, history_probe, beacon_probe, with_code };
    (db, world)
}

/// The transactions of the Prague block.
fn prague_txns(world: &World) -> Txns {
    let mut t = Txns::new(HashMap::new());
    let s = &world.senders;
    let (e0, e1, e2) = (world.authority(0), world.authority(1), world.authority(2));
    // Delegations: e0 and e1 to the counter, a self-sponsored one for e2, and authorizations
    // the block must skip; the transaction calls e0, running its new code.
    t.set_code(
        s[0],
        e0,
        0,
        vec![
            Auth::Valid(&world.keys[0], world.counter),
            Auth::AnyChain(&world.keys[1], world.counter),
            Auth::Skipped(&world.keys[3], 5, world.counter, 0),
            Auth::Skipped(&world.keys[4], CHAIN_ID, world.counter, 7),
            Auth::Skipped(&world.keys[5], CHAIN_ID, world.counter, u64::MAX),
            Auth::Skipped(&world.with_code, CHAIN_ID, world.counter, 0),
        ],
    );
    t.set_code(e2, e2, 0, vec![Auth::Valid(&world.keys[2], world.counter_by_two)]);
    // The delegated account called by many transactions, directly and from a contract.
    let caller = s[1].create(t.nonces.get(&s[1]).copied().unwrap_or_default());
    t.call(s[1], TxKind::Create, 0, caller_init(e0), 200_000);
    for (i, &from) in s.iter().enumerate().take(14).skip(2) {
        let to = if i % 4 == 0 { caller } else { e0 };
        t.call(from, TxKind::Call(to), (i % 3) as u64, Bytes::new(), 100_000);
    }
    // Re-delegated to the counter by two, then called again, and sending a transaction itself.
    t.set_code(s[14], e0, 5, vec![Auth::Valid(&world.keys[0], world.counter_by_two)]);
    for &from in &s[15..20] {
        t.call(from, TxKind::Call(e0), 0, Bytes::new(), 100_000);
    }
    t.call(e0, TxKind::Call(s[0]), 1_000, Bytes::new(), 100_000);
    // e1's delegation cleared, then plain value sent to it; e3 delegates to a delegated account.
    t.set_code(s[20], e1, 0, vec![Auth::Valid(&world.keys[1], Address::ZERO)]);
    t.legacy(s[21], e1, 77);
    t.set_code(s[22], world.authority(3), 0, vec![Auth::Valid(&world.keys[3], e0)]);
    // What the system calls wrote, read back.
    t.call(s[23], TxKind::Call(world.history_probe), 0, word(FIRST_NUMBER - 1), 100_000);
    t.call(s[24], TxKind::Call(world.beacon_probe), 0, word(PRAGUE_TIME), 100_000);
    requests(&mut t, world, 25);
    // Blobs.
    t.blob(s[33], e0, 2);
    t.blob(s[34], s[35], 1);
    t.blob(s[35], world.counter, 3);
    t
}

/// The init code of a contract that calls `target` when called: deploys `caller_of(target)`.
fn caller_init(target: Address) -> Bytes {
    let runtime = caller_of(target);
    // PUSH1 len, DUP1, PUSH1 offset, PUSH0, CODECOPY, PUSH0, RETURN, then the runtime code.
    let mut init = code(&format!("60{:02x}8060095f395ff3", runtime.len())).to_vec();
    init.extend_from_slice(&runtime);
    init.into()
}

fn word(n: u64) -> Bytes {
    Bytes::from(B256::from(U256::from(n)).0.to_vec())
}

/// Deposits, withdrawal requests (one underpaid: reverted) and consolidation requests, from
/// senders `first..first + 8`.
fn requests(t: &mut Txns, world: &World, first: usize) {
    let s = &world.senders[first..first + 8];
    for (i, &from) in s[..3].iter().enumerate() {
        let event = DepositEvent {
            pubkey: vec![i as u8 + 1; 48].into(),
            withdrawal_credentials: vec![2; 32].into(),
            amount: 32_000_000_000u64.to_le_bytes().to_vec().into(),
            signature: vec![3; 96].into(),
            index: (i as u64).to_le_bytes().to_vec().into(),
        };
        t.call(from, TxKind::Call(MAINNET_DEPOSIT_CONTRACT_ADDRESS), 0, event.encode_data().into(), 100_000);
    }
    for (i, &from) in s[3..6].iter().enumerate() {
        let mut input = vec![0x10 + i as u8; 48];
        input.extend_from_slice(&(1_000 * i as u64).to_be_bytes());
        let fee = if i == 2 { 0 } else { 10 };
        t.call(from, TxKind::Call(WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS), fee, input.into(), 200_000);
    }
    for (i, &from) in s[6..8].iter().enumerate() {
        let mut input = vec![0x20 + i as u8; 48];
        input.extend_from_slice(&[0x30 + i as u8; 48]);
        t.call(from, TxKind::Call(CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS), 10, input.into(), 200_000);
    }
}

/// The transactions of the Osaka block, after the Prague block's.
fn osaka_txns(world: &World, nonces: HashMap<Address, u64>) -> Txns {
    let mut t = Txns::new(nonces);
    let s = &world.senders;
    let e0 = world.authority(0);
    // e0 back to the counter; e1 delegated again; calls to both.
    t.set_code(
        s[0],
        e0,
        0,
        vec![Auth::Valid(&world.keys[0], world.counter), Auth::Valid(&world.keys[1], world.counter_by_two)],
    );
    for (i, &from) in s.iter().enumerate().take(12).skip(1) {
        let to = if i % 2 == 0 { e0 } else { world.authority(1) };
        t.call(from, TxKind::Call(to), 1, Bytes::new(), 100_000);
    }
    t.call(s[12], TxKind::Call(world.history_probe), 0, word(FIRST_NUMBER), 100_000);
    t.call(s[13], TxKind::Call(world.beacon_probe), 0, word(OSAKA_TIME), 100_000);
    requests(&mut t, world, 14);
    t.blob(s[30], e0, 1);
    t.blob(s[31], s[32], 2);
    for i in 32..SENDERS {
        t.legacy(s[i], s[i - 30], 5);
    }
    t
}

/// The header of block `number` at `timestamp`.
fn header(number: u64, timestamp: u64) -> Header {
    Header {
        number,
        timestamp,
        gas_limit: 60_000_000,
        base_fee_per_gas: Some(GWEI as u64),
        beneficiary: Address::repeat_byte(0xfe),
        mix_hash: keccak256(number.to_be_bytes()),
        parent_hash: keccak256(format!("block {}", number - 1)),
        parent_beacon_block_root: Some(keccak256(format!("beacon {number}"))),
        excess_blob_gas: Some(0),
        blob_gas_used: Some(0),
        ..Default::default()
    }
}

fn withdrawals(world: &World, number: u64) -> Vec<Withdrawal> {
    let to = [world.authority(0), world.senders[3], Address::repeat_byte(0x77)];
    to.iter()
        .enumerate()
        .map(|(i, &address)| Withdrawal {
            index: number * 10 + i as u64,
            validator_index: i as u64,
            address,
            amount: 1_000,
        })
        .collect()
}

fn blob_params(timestamp: u64) -> BlobParams {
    if timestamp >= OSAKA_TIME { BlobParams::osaka() } else { BlobParams::prague() }
}

/// One block: the oracle's result, ours at 1, 2, 4 and 8 threads compared with it; ours
/// (from 8 threads) returned.
fn check_block(
    db: &CacheDB<EmptyDB>,
    header: &Header,
    withdrawals: &[Withdrawal],
    txns: &[Recovered<TxEnvelope>],
) -> (OracleBlock, BlockExecution) {
    let spec = EthSpec::mainnet();
    let env = EvmEnv::for_eth_block(header, &spec, CHAIN_ID, Some(blob_params(header.timestamp)));
    let ctx = || EthBlockExecutionCtx {
        parent_hash: header.parent_hash,
        parent_beacon_block_root: header.parent_beacon_block_root,
        ommers: &[],
        withdrawals: Some(Cow::Borrowed(withdrawals)),
        extra_data: Default::default(),
        tx_count_hint: Some(txns.len()),
        slot_number: None,
    };
    let oracle = alloy_evm_block(db, &spec, env.clone(), ctx(), txns)
        .unwrap_or_else(|e| panic!("block {}, oracle: {e}", header.number));
    let expected_list = alloy_evm_block_access_list(db, &spec, env.clone(), ctx(), txns)
        .unwrap_or_else(|e| panic!("block {}, revm's access-list builder: {e}", header.number));
    assert!(!expected_list.is_empty());
    let mut last = None;
    for threads in [1, 2, 4, 8] {
        let block = BlockInput { env: env.clone(), ctx: ctx(), transactions: txns };
        let out = execute_block(db, &spec, block, Config::new(threads).unwrap())
            .unwrap_or_else(|e| panic!("block {}, {threads} threads: {e}", header.number));
        let at = format!("block {} ({:?}), {threads} threads", header.number, env.cfg_env.spec);
        assert_eq!(out.receipts, oracle.receipts, "{at}: receipts");
        assert_eq!((out.gas_used, out.blob_gas_used), (oracle.gas_used, oracle.blob_gas_used), "{at}: gas");
        assert_eq!(out.requests, oracle.requests, "{at}: requests");
        let ours = committed(db, out.state.clone());
        if let Some(difference) = bundle_difference(db, &oracle.bundle, &ours) {
            panic!("{at}: {difference}");
        }
        // The alloy-evm integration, driven as a client validating the block drives it.
        let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(threads).unwrap());
        let through = through_factory(&factory, db, env.clone(), ctx(), txns)
            .unwrap_or_else(|e| panic!("{at}, executor factory: {e}"));
        assert_eq!(factory.path_counts().parallel, 1, "{at}: ran on Block-STM");
        assert_eq!(through.receipts, oracle.receipts, "{at}, executor factory: receipts");
        assert_eq!(through.requests, oracle.requests, "{at}, executor factory: requests");
        assert_eq!(
            (through.gas_used, through.blob_gas_used),
            (oracle.gas_used, oracle.blob_gas_used),
            "{at}, executor factory: gas"
        );
        if let Some(difference) = bundle_difference(db, &oracle.bundle, &through.bundle) {
            panic!("{at}, executor factory: {difference}");
        }
        // Over a `State` recording the block's access list, each change at its index.
        let (indexed, list) = through_factory_with_access_list(&factory, db, env.clone(), ctx(), txns)
            .unwrap_or_else(|e| panic!("{at}, executor factory building the list: {e}"));
        assert_eq!(factory.path_counts().parallel, 2, "{at}: the list built on Block-STM");
        assert_eq!(block_access_list_rlp(&list), block_access_list_rlp(&expected_list), "{at}: access list");
        assert_eq!((&indexed.receipts, &indexed.requests), (&oracle.receipts, &oracle.requests), "{at}");
        if let Some(difference) = bundle_difference(db, &oracle.bundle, &indexed.bundle) {
            panic!("{at}, executor factory building the list: {difference}");
        }
        // Executed from the block's list, as a client validating the block drives it.
        let through =
            through_factory_from_access_list(&factory, db, env.clone(), ctx(), txns, &expected_list)
                .unwrap_or_else(|e| panic!("{at}, executor factory from the list: {e}"));
        assert_eq!(factory.path_counts().parallel, if threads > 1 { 3 } else { 2 }, "{at}: from the list");
        assert_eq!((&through.receipts, &through.requests), (&oracle.receipts, &oracle.requests), "{at}");
        assert_eq!(
            (through.gas_used, through.blob_gas_used),
            (oracle.gas_used, oracle.blob_gas_used),
            "{at}"
        );
        if let Some(difference) = bundle_difference(db, &oracle.bundle, &through.bundle) {
            panic!("{at}, executor factory from the list: {difference}");
        }
        last = Some(out);
    }
    // Its per-transaction methods, as a block builder calls them: alloy-evm's, sequential.
    let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(2).unwrap());
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    let evm = factory.evm_factory().create_evm(&mut state, env.clone());
    let mut builder = factory.create_executor(evm, ctx());
    builder.apply_pre_execution_changes().unwrap();
    for tx in txns {
        builder.execute_transaction(tx).unwrap();
    }
    let built = builder.finish().unwrap().1;
    assert_eq!((built.receipts, built.requests), (oracle.receipts.clone(), oracle.requests.clone()));
    state.merge_transitions(BundleRetention::Reverts);
    assert_eq!(bundle_difference(db, &oracle.bundle, &state.take_bundle()), None, "block builder");
    (oracle, last.expect("ran"))
}

/// The code `address` runs as after `out` (its delegation designator, or its own code).
fn code_after(db: &CacheDB<EmptyDB>, out: &BlockExecution, address: Address) -> Bytes {
    match out.state.get(&address) {
        Some(account) => account.info.code.as_ref().map(|c| c.original_bytes()).unwrap_or_default(),
        None => db
            .basic_ref(address)
            .unwrap()
            .and_then(|i| i.code)
            .map(|c| c.original_bytes())
            .unwrap_or_default(),
    }
}

fn designator(target: Address) -> Bytes {
    Bytecode::new_eip7702(target).original_bytes()
}

#[test]
fn prague_and_osaka_blocks_match_alloy_evms_block_executor() {
    let (mut db, world) = genesis();
    let prague = header(FIRST_NUMBER, PRAGUE_TIME);
    let txns = prague_txns(&world);
    let (oracle, out) = check_block(&db, &prague, &withdrawals(&world, prague.number), &txns.txns);

    // The block did what it is here to check.
    let e0 = world.authority(0);
    assert_eq!(code_after(&db, &out, e0), designator(world.counter_by_two), "e0 re-delegated");
    assert!(code_after(&db, &out, world.authority(1)).is_empty(), "e1's delegation cleared");
    assert_eq!(code_after(&db, &out, world.authority(2)), designator(world.counter_by_two), "self-sponsored");
    for skipped in [world.authority(4), world.authority(5)] {
        assert!(code_after(&db, &out, skipped).is_empty(), "an invalid authorization was applied");
    }
    let e0_slot = out.state[&e0].storage[&U256::ZERO].present_value;
    assert_eq!(e0_slot, U256::from(13 + 2 * 7), "e0's counter: 13 increments, then 7 by two");
    let types: Vec<u8> = oracle.requests.iter().map(|r| r[0]).collect();
    assert_eq!(types, [0, 1, 2], "deposit, withdrawal and consolidation requests");
    assert_eq!(oracle.blob_gas_used, 6 * alloy_eips::eip4844::DATA_GAS_PER_BLOB);
    assert!(oracle.receipts.iter().any(|r| !alloy_consensus::TxReceipt::status(r)), "a reverted request");
    assert_ne!(out.state[&world.history_probe].storage[&U256::ZERO].present_value, U256::ZERO);
    assert_ne!(out.state[&world.beacon_probe].storage[&U256::ZERO].present_value, U256::ZERO);

    // The next block, under Osaka, on this one's post-state.
    let nonces = txns.nonces;
    db.commit(out.state);
    let osaka = header(FIRST_NUMBER + 1, OSAKA_TIME);
    let txns = osaka_txns(&world, nonces);
    let (oracle, out) = check_block(&db, &osaka, &withdrawals(&world, osaka.number), &txns.txns);
    let env = EvmEnv::for_eth_block(&osaka, EthSpec::mainnet(), CHAIN_ID, None);
    assert_eq!(env.cfg_env.spec, revm::primitives::hardfork::SpecId::OSAKA);
    assert_eq!(code_after(&db, &out, e0), designator(world.counter));
    assert_eq!(code_after(&db, &out, world.authority(1)), designator(world.counter_by_two));
    let types: Vec<u8> = oracle.requests.iter().map(|r| r[0]).collect();
    assert_eq!(types, [0, 1, 2]);
}
