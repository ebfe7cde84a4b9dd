//! The client API on bad input: a transaction with a wrong nonce, one its sender cannot
//! afford, one above what the block's gas limit leaves, a set-code transaction without
//! authorizations, a database that fails on one account, and a block hash the database cannot
//! read each fail the block with a typed error naming the transaction, at every thread count
//! and executed from an access list, without a panic; invalid EIP-7702 authorizations are skipped, as the EIP says, and the block
//! runs; `DatabaseStorage` on its own keeps the database's error whole; the alloy-evm executor
//! factory gives alloy-evm's own errors.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Signed, TxEip7702, TxEnvelope, TxLegacy};
use alloy_eips::eip7002::{WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_CODE};
use alloy_eips::eip7251::{CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_CODE};
use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_evm::EthEvmFactory;
use alloy_evm::EvmEnv;
use alloy_evm::eth::EthBlockExecutionCtx;
use alloy_evm::eth::EthBlockExecutorFactory;
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthSpec;
use alloy_primitives::Signature;
use alloy_primitives::{Address, B256, U256, address};
use blockstm_evm::oracle::{through_factory, through_factory_from_access_list};
use blockstm_evm::{
    BlockInput, BlockStmExecutorFactory, ClientError, DatabaseStorage, EvmError, EvmTx, EvmVm, SpecId,
    execute_block, execute_block_from_access_list, execute_block_sequential,
};
use blockstm_executor::{BlockError, BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::primitives::{StorageKey, StorageValue, TxKind};
use revm::state::AccountInfo;

const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");
const BOB: Address = address!("0x0000000000000000000000000000000000000b0b");
const BROKEN: Address = address!("0x00000000000000000000000000000000000bad00");
/// A block whose hash the database cannot read (10 below the test blocks' number).
const BROKEN_HASH: u64 = 19_999_990;
/// Stores `BLOCKHASH(19 999 990)` in its slot 0.
const READS_BROKEN_HASH: Address = address!("0x000000000000000000000000000000000000b10c");

#[derive(Debug, PartialEq)]
struct DiskFailure(Address);

impl std::fmt::Display for DiskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "disk failure reading {}", self.0)
    }
}

impl std::error::Error for DiskFailure {}
impl DBErrorMarker for DiskFailure {}

/// A database whose account `BROKEN` cannot be read.
#[derive(Debug)]
struct FailingDb(CacheDB<EmptyDB>);

impl DatabaseRef for FailingDb {
    type Error = DiskFailure;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DiskFailure> {
        if address == BROKEN {
            return Err(DiskFailure(address));
        }
        Ok(self.0.basic_ref(address).expect("in memory"))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DiskFailure> {
        Ok(self.0.code_by_hash_ref(code_hash).expect("in memory"))
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, DiskFailure> {
        Ok(self.0.storage_ref(address, index).expect("in memory"))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DiskFailure> {
        if number == BROKEN_HASH {
            return Err(DiskFailure(Address::ZERO));
        }
        Ok(self.0.block_hash_ref(number).expect("in memory"))
    }
}

fn transfer(nonce: u64, to: Address) -> EvmTx {
    EvmTx(TxEnv {
        caller: ALICE,
        kind: TxKind::Call(to),
        value: U256::from(1),
        gas_limit: 21_000,
        gas_price: 1,
        nonce,
        chain_id: Some(1),
        ..TxEnv::default()
    })
}

#[test]
fn a_failing_database_names_the_transaction_and_keeps_its_error() {
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(ALICE, AccountInfo::from_balance(U256::from(10u64.pow(18))));
    let db = FailingDb(db);
    let storage = DatabaseStorage::new(&db);
    let mut env: EvmEnv = EvmEnv::default();
    env.cfg_env.spec = SpecId::CANCUN;
    env.cfg_env.chain_id = 1;
    env.block_env.gas_limit = 30_000_000;
    let vm = EvmVm::from_env(env, &storage);
    let txns = [transfer(0, BOB), transfer(1, BROKEN), transfer(2, BOB)];

    let check = |result: Result<_, BlockError<_>>, who: &str| match result {
        Err(BlockError::Storage { txn_idx, error }) => {
            assert_eq!(txn_idx, 1, "{who}");
            assert_eq!(error.downcast_ref::<DiskFailure>(), Some(&DiskFailure(BROKEN)), "{who}");
        }
        other => panic!("{who}: {other:?}"),
    };
    check(SequentialExecutor::new(vm.clone()).execute_block(&storage, &txns), "sequential");
    for threads in [1, 2, 4, 8] {
        let parallel = ParallelExecutor::new(vm.clone(), Config::new(threads).unwrap());
        check(parallel.execute_block(&storage, &txns), &format!("{threads} threads"));
    }
    // Without the broken account the same block runs.
    let txns = [transfer(0, BOB), transfer(1, BOB)];
    let out = SequentialExecutor::new(vm).execute_block(&storage, &txns).unwrap();
    assert!(out.outputs.iter().all(|receipt| receipt.success));
}

/// A legacy transfer of 1 wei from `ALICE`, as a client holds it (signature not checked: the
/// sender is given).
fn signed(nonce: u64, to: Address, gas_limit: u64, gas_price: u128) -> Recovered<TxEnvelope> {
    let tx = TxLegacy {
        chain_id: Some(1),
        nonce,
        gas_price,
        gas_limit,
        to: TxKind::Call(to),
        value: U256::from(1),
        input: Default::default(),
    };
    let envelope = TxEnvelope::Legacy(Signed::new_unchecked(tx, Signature::test_signature(), B256::ZERO));
    Recovered::new_unchecked(envelope, ALICE)
}

/// `ALICE`'s set-code transaction to `BOB` with `authorizations`.
fn set_code(nonce: u64, authorization_list: Vec<SignedAuthorization>) -> Recovered<TxEnvelope> {
    let tx = TxEip7702 {
        chain_id: 1,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1,
        to: BOB,
        authorization_list,
        ..Default::default()
    };
    let envelope = TxEnvelope::Eip7702(Signed::new_unchecked(tx, Signature::test_signature(), B256::ZERO));
    Recovered::new_unchecked(envelope, ALICE)
}

/// An authorization by a fixed key to run `ALICE`'s (empty) code, signed for `chain_id` at
/// `nonce`, and its authority.
fn authorization(chain_id: u64, nonce: u64) -> (SignedAuthorization, Address) {
    let key = k256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let auth = Authorization { chain_id: U256::from(chain_id), address: ALICE, nonce };
    let (sig, recid) = key.sign_prehash_recoverable(auth.signature_hash().as_slice()).unwrap();
    (auth.into_signed(Signature::from((sig, recid))), Address::from_private_key(&key))
}

/// A Cancun block on mainnet's schedule, gas limit `gas_limit`.
fn input<'a>(txns: &'a [Recovered<TxEnvelope>], gas_limit: u64) -> BlockInput<'a> {
    at(SpecId::CANCUN, 1_720_000_000, txns, gas_limit)
}

/// A Prague block on mainnet's schedule.
fn prague(txns: &[Recovered<TxEnvelope>]) -> BlockInput<'_> {
    at(SpecId::PRAGUE, 1_750_000_000, txns, 30_000_000)
}

/// A block under `spec` at `timestamp` (on mainnet's schedule), gas limit `gas_limit`.
fn at(spec: SpecId, timestamp: u64, txns: &[Recovered<TxEnvelope>], gas_limit: u64) -> BlockInput<'_> {
    let mut env: EvmEnv = EvmEnv::default();
    env.cfg_env.spec = spec;
    env.cfg_env.chain_id = 1;
    env.block_env.number = U256::from(20_000_000);
    env.block_env.timestamp = U256::from(timestamp);
    env.block_env.gas_limit = gas_limit;
    env.block_env.basefee = 7;
    let ctx = EthBlockExecutionCtx {
        parent_hash: B256::ZERO,
        parent_beacon_block_root: Some(B256::ZERO),
        ommers: &[],
        withdrawals: None,
        extra_data: Default::default(),
        tx_count_hint: None,
        slot_number: None,
    };
    BlockInput { env, ctx, transactions: txns }
}

#[test]
fn invalid_transactions_and_a_failing_database_name_the_transaction() {
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(ALICE, AccountInfo::from_balance(U256::from(10u64.pow(18))));
    // PUSH4 19 999 990, BLOCKHASH, PUSH0, SSTORE, STOP.
    let code = Bytecode::new_raw(alloy_primitives::bytes!("6301312cf6405f5500"));
    db.insert_account_info(READS_BROKEN_HASH, AccountInfo::default().with_code(code));
    let db = FailingDb(db);
    let gwei = 1_000_000_000;
    let good = [signed(0, BOB, 21_000, gwei), signed(1, BOB, 21_000, gwei)];
    let cases: [(&str, Vec<Recovered<TxEnvelope>>, u64); 5] = [
        ("wrong nonce", vec![good[0].clone(), signed(5, BOB, 21_000, gwei)], 30_000_000),
        ("unaffordable", vec![good[0].clone(), signed(1, BOB, 21_000, 10u128.pow(18))], 30_000_000),
        ("above the block's gas", vec![good[0].clone(), signed(1, BOB, 30_000, gwei)], 50_000),
        ("failing database", vec![good[0].clone(), signed(1, BROKEN, 21_000, gwei)], 30_000_000),
        (
            "unreadable block hash",
            vec![good[0].clone(), signed(1, READS_BROKEN_HASH, 60_000, gwei)],
            30_000_000,
        ),
    ];
    // `None`: the sequential executor. Each parallel case also runs from an (empty) access
    // list: a failure the list may have caused is retried on the true state, so the block's
    // own error comes out, the same.
    for threads in [None, Some(1), Some(2), Some(4), Some(8)] {
        let list_runs: &[bool] = if threads.is_some() { &[false, true] } else { &[false] };
        for (&from_list, (what, txns, gas_limit)) in
            list_runs.iter().flat_map(|f| std::iter::repeat(f).zip(&cases))
        {
            let block = input(txns, *gas_limit);
            let error = match threads {
                Some(threads) if from_list => execute_block_from_access_list(
                    &db,
                    &EthSpec::mainnet(),
                    block,
                    &Default::default(),
                    Config::new(threads).unwrap(),
                ),
                Some(threads) => {
                    execute_block(&db, &EthSpec::mainnet(), block, Config::new(threads).unwrap())
                }
                None => execute_block_sequential(&db, &EthSpec::mainnet(), block),
            }
            .unwrap_err();
            if let ClientError::Block(BlockError::Vm { error: EvmError::MissingState(why), .. }) = &error {
                assert!(why.contains("19999990") && why.contains("disk failure"), "{what}: {why}");
            }
            let txn_idx = match &error {
                ClientError::Block(BlockError::Vm {
                    txn_idx,
                    error: EvmError::InvalidTransaction(_) | EvmError::MissingState(_),
                }) => *txn_idx,
                ClientError::BlockGasExceeded { txn_idx, gas_limit: 30_000 } => *txn_idx,
                ClientError::Block(BlockError::Storage { txn_idx, error }) => {
                    assert_eq!(error.downcast_ref::<DiskFailure>(), Some(&DiskFailure(BROKEN)));
                    *txn_idx
                }
                other => panic!("{what}, {threads:?} threads (from a list: {from_list}): {other:?}"),
            };
            assert_eq!(txn_idx, 1, "{what}, {threads:?} threads: {error}");
            assert!(error.to_string().contains('1'), "{what}: {error}");
        }
        let out = execute_block(&db, &EthSpec::mainnet(), input(&good, 30_000_000), Config::new(2).unwrap())
            .unwrap();
        assert_eq!(out.gas_used, 42_000);
        assert_eq!(out.state[&BOB].info.balance, U256::from(2));
    }
}

#[test]
fn invalid_authorizations_are_skipped_and_an_empty_list_names_the_transaction() {
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(ALICE, AccountInfo::from_balance(U256::from(10u64.pow(18))));
    // Prague's request contracts, which its blocks must have.
    for (address, code) in [
        (WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, &WITHDRAWAL_REQUEST_PREDEPLOY_CODE),
        (CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, &CONSOLIDATION_REQUEST_PREDEPLOY_CODE),
    ] {
        db.insert_account_info(address, AccountInfo::default().with_code(Bytecode::new_raw(code.clone())));
    }
    let (valid, authority) = authorization(1, 0);
    let skipped = [authorization(5, 0).0, authorization(1, 3).0, authorization(1, u64::MAX).0];
    let first = signed(0, BOB, 21_000, 2_000_000_000);
    for threads in [1, 2, 4, 8] {
        let config = Config::new(threads).unwrap();
        // Each invalid authorization skipped: the authority keeps no code and nonce 0.
        let txns = [first.clone(), set_code(1, skipped.to_vec())];
        let out = execute_block(&db, &EthSpec::mainnet(), prague(&txns), config).unwrap();
        assert!(!out.state.contains_key(&authority), "{threads} threads: {:?}", out.state.get(&authority));
        assert!(out.receipts.iter().all(alloy_consensus::TxReceipt::status));
        // With a valid one after them, that one applies.
        let txns = [first.clone(), set_code(1, [skipped.to_vec(), vec![valid.clone()]].concat())];
        let out = execute_block(&db, &EthSpec::mainnet(), prague(&txns), config).unwrap();
        assert_eq!(out.state[&authority].info.nonce, 1, "{threads} threads");
        assert_eq!(out.state[&authority].info.code, Some(Bytecode::new_eip7702(ALICE)), "{threads} threads");
        // No authorization at all: an invalid transaction.
        let txns = [first.clone(), set_code(1, Vec::new())];
        match execute_block(&db, &EthSpec::mainnet(), prague(&txns), config).unwrap_err() {
            ClientError::Block(BlockError::Vm { txn_idx: 1, error: EvmError::InvalidTransaction(rule) }) => {
                assert!(rule.contains("authorization"), "{rule}")
            }
            other => panic!("{threads} threads: {other:?}"),
        }
    }
}

#[test]
fn the_executor_factory_gives_alloy_evms_own_errors() {
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(ALICE, AccountInfo::from_balance(U256::from(10u64.pow(18))));
    let db = FailingDb(db);
    let gwei = 1_000_000_000;
    let first = signed(0, BOB, 21_000, gwei);
    let cases: [(&str, Vec<Recovered<TxEnvelope>>, u64); 4] = [
        ("wrong nonce", vec![first.clone(), signed(5, BOB, 21_000, gwei)], 30_000_000),
        ("unaffordable", vec![first.clone(), signed(1, BOB, 21_000, 10u128.pow(18))], 30_000_000),
        ("above the block's gas", vec![first.clone(), signed(1, BOB, 30_000, gwei)], 50_000),
        ("failing database", vec![first.clone(), signed(1, BROKEN, 21_000, gwei)], 30_000_000),
    ];
    let alloy = EthBlockExecutorFactory::new(
        AlloyReceiptBuilder::default(),
        EthSpec::mainnet(),
        EthEvmFactory::default(),
    );
    for threads in [1, 2, 4, 8] {
        let ours = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(threads).unwrap());
        for (what, txns, gas_limit) in &cases {
            let BlockInput { env, ctx, .. } = input(txns, *gas_limit);
            let expected = through_factory(&alloy, &db, env.clone(), ctx.clone(), txns).unwrap_err();
            let error = through_factory(&ours, &db, env, ctx, txns).unwrap_err();
            assert_eq!(error.to_string(), expected.to_string(), "{what}, {threads} threads");
        }
        // Each failed on Block-STM, then ran sequentially for alloy-evm's error.
        assert_eq!(ours.path_counts().sequential, cases.len() as u64, "{threads} threads");
    }
    // Executed from an access list (empty, but the transaction fails first): the same errors,
    // from the list-driven run or, where it fails, from alloy-evm's executor run after it.
    // The transactions' gas is raised so that the list-driven run applies.
    let heavy: [(&str, Vec<Recovered<TxEnvelope>>, u64); 4] = [
        ("wrong nonce", vec![signed(0, BOB, 300_000, gwei), signed(5, BOB, 300_000, gwei)], 30_000_000),
        (
            "unaffordable",
            vec![signed(0, BOB, 300_000, gwei), signed(1, BOB, 300_000, 10u128.pow(18))],
            30_000_000,
        ),
        (
            "above the block's gas",
            vec![signed(0, BOB, 300_000, gwei), signed(1, BOB, 390_000, gwei)],
            400_000,
        ),
        (
            "failing database",
            vec![signed(0, BOB, 300_000, gwei), signed(1, BROKEN, 300_000, gwei)],
            30_000_000,
        ),
    ];
    for threads in [1, 2, 4, 8] {
        let config = Config::new(threads).unwrap().with_adaptive(false);
        let ours = BlockStmExecutorFactory::new(EthSpec::mainnet(), config);
        for (what, txns, gas_limit) in &heavy {
            let BlockInput { env, ctx, .. } = input(txns, *gas_limit);
            let expected = through_factory(&alloy, &db, env.clone(), ctx.clone(), txns).unwrap_err();
            let list = Default::default();
            let error = through_factory_from_access_list(&ours, &db, env, ctx, txns, &list).unwrap_err();
            assert_eq!(error.to_string(), expected.to_string(), "{what}, {threads} threads, from a list");
        }
        assert_eq!(ours.path_counts().sequential, heavy.len() as u64, "{threads} threads, from a list");
    }
}
