//! `DatabaseStorage`: a client's revm database as the pre-state. A database that fails on one
//! account fails the block at the transaction that reads it, naming it and keeping the
//! database's own error, sequentially and in parallel, without a panic.

use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256, U256, address};
use blockstm_evm::{DatabaseStorage, EvmTx, EvmVm, SpecId};
use blockstm_executor::{BlockError, BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::primitives::{StorageKey, StorageValue, TxKind};
use revm::state::AccountInfo;
use std::sync::Arc;

const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");
const BOB: Address = address!("0x0000000000000000000000000000000000000b0b");
const BROKEN: Address = address!("0x00000000000000000000000000000000000bad00");

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
    let vm = EvmVm::from_env(env, Arc::new(storage.recent_block_hashes(1).unwrap()));
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
