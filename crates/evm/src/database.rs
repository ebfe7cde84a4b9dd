//! A client's own state and block as the executor's inputs: any `revm::DatabaseRef` as the
//! pre-state, alloy-evm's `EvmEnv` as the block's environment, alloy's recovered transactions.

use crate::chain::PreState;
use crate::state::{AccountBasic, AccountState, EvmKey, EvmValue, SlotValue};
use crate::vm::{BlockHashes, EvmTx};
use alloy_consensus::TxEnvelope;
use alloy_consensus::transaction::Recovered;
use alloy_evm::FromRecoveredTx;
use alloy_primitives::{Address, B256, U256};
use blockstm_executor::Storage;
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::database_interface::DatabaseRef;
use revm::primitives::{KECCAK_EMPTY, StorageKey, StorageValue};
use revm::state::AccountInfo;

/// The state before a block, read from any revm database a client holds (`DatabaseRef +
/// Sync`: reth's state providers, revm's `CacheDB`, ...), with changes over it (what the
/// block's system calls wrote before its transactions). An account comes with its code,
/// fetched by its hash when the database leaves it out; a slot absent from the database reads
/// as zero. A database error fails the block with `BlockError::Storage`, naming the
/// transaction and keeping the database's error as its source.
///
/// It is also a `DatabaseRef` itself (the database with the changes applied), for the system
/// calls around the transactions.
#[derive(Clone, Debug)]
pub struct DatabaseStorage<DB> {
    db: DB,
    changes: PreState,
}

impl<DB: DatabaseRef> DatabaseStorage<DB> {
    /// The pre-state `db` holds.
    pub fn new(db: DB) -> Self {
        Self { db, changes: PreState::default() }
    }

    /// The database.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// The changes over the database (location to value).
    pub fn changes(&self) -> &PreState {
        &self.changes
    }

    /// `writes` applied over the current changes.
    pub fn extend(&mut self, writes: impl IntoIterator<Item = (EvmKey, EvmValue)>) {
        self.changes.extend(writes);
    }

    /// The value at `key`: the changes' if they hold one, else the database's.
    pub(crate) fn get(&self, key: &EvmKey) -> Result<Option<EvmValue>, DB::Error> {
        // Most blocks before Cancun make no changes before their transactions: no hashing then.
        if !self.changes.is_empty()
            && let Some(value) = self.changes.get(key)
        {
            return Ok(Some(value.clone()));
        }
        match *key {
            EvmKey::Account(address) => {
                let Some(info) = self.db.basic_ref(address)? else { return Ok(None) };
                let info = Some(self.basic_with_code(info)?);
                Ok(Some(EvmValue::Account(AccountState { info, storage_epoch: 0 })))
            }
            EvmKey::Storage(address, slot) => {
                let value = self.db.storage_ref(address, slot)?;
                Ok((!value.is_zero()).then_some(EvmValue::Storage(SlotValue { value, epoch: 0 })))
            }
        }
    }

    /// The account at `address` (absent: no basics, epoch 0).
    pub(crate) fn account(&self, address: Address) -> Result<AccountState, DB::Error> {
        Ok(match self.get(&EvmKey::Account(address))? {
            Some(EvmValue::Account(account)) => account,
            _ => AccountState::default(),
        })
    }

    /// The storage epoch of `address` (see the `state` module).
    pub(crate) fn epoch(&self, address: Address) -> Result<u32, DB::Error> {
        Ok(self.account(address)?.storage_epoch)
    }

    /// `info` with its code, fetched from the database by hash when `info` leaves it out.
    pub(crate) fn basic_with_code(&self, info: AccountInfo) -> Result<AccountBasic, DB::Error> {
        let mut basic = AccountBasic::from_revm_owned(info);
        let code_missing = basic.code.as_ref().is_none_or(|code| code.is_empty());
        if basic.code_hash != KECCAK_EMPTY && code_missing {
            basic.code = Some(self.db.code_by_hash_ref(basic.code_hash)?);
        }
        Ok(basic)
    }
}

impl<DB: DatabaseRef + Sync> Storage<EvmKey, EvmValue> for DatabaseStorage<DB> {
    type Error = DB::Error;

    fn read(&self, key: &EvmKey) -> Result<Option<EvmValue>, DB::Error> {
        self.get(key)
    }
}

impl<DB: DatabaseRef> DatabaseRef for DatabaseStorage<DB> {
    type Error = DB::Error;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DB::Error> {
        Ok(self.account(address)?.info.as_ref().map(AccountBasic::to_revm))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DB::Error> {
        self.db.code_by_hash_ref(code_hash)
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, DB::Error> {
        let epoch = self.epoch(address)?;
        Ok(match self.get(&EvmKey::Storage(address, index))? {
            Some(EvmValue::Storage(slot)) if slot.epoch == epoch => slot.value,
            _ => U256::ZERO,
        })
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DB::Error> {
        self.db.block_hash_ref(number)
    }
}

/// `BLOCKHASH` reads the database's `block_hash_ref`, when a transaction executes it.
impl<DB: DatabaseRef + Sync> BlockHashes for DatabaseStorage<DB> {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        self.db.block_hash_ref(number).map(Some).map_err(|e| e.to_string())
    }
}

impl EvmTx {
    /// The transaction `tx` as revm executes it, by alloy-evm's conversion (the one its block
    /// executor uses).
    pub fn from_recovered(tx: &Recovered<TxEnvelope>) -> Self {
        EvmTx(TxEnv::from_recovered_tx(tx.inner(), tx.signer()))
    }
}
