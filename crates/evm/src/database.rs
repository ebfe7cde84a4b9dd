//! A client's own state and block as the executor's inputs: any `revm::DatabaseRef` as the
//! pre-state, alloy-evm's `EvmEnv` as the block's environment, alloy's recovered transactions.

use crate::state::{AccountBasic, AccountState, EvmKey, EvmValue, SlotValue};
use crate::vm::EvmTx;
use alloy_consensus::TxEnvelope;
use alloy_consensus::transaction::Recovered;
use alloy_evm::FromRecoveredTx;
use alloy_primitives::B256;
use blockstm_executor::Storage;
use revm::context::TxEnv;
use revm::database_interface::DatabaseRef;
use revm::primitives::KECCAK_EMPTY;
use std::collections::HashMap;

/// The state before a block, read from any revm database a client holds (`DatabaseRef +
/// Sync`: reth's state providers, revm's `CacheDB`, ...). An account comes with its code,
/// fetched by its hash when the database leaves it out; a slot absent from the database reads
/// as zero. A database error fails the block with `BlockError::Storage`, naming the
/// transaction and keeping the database's error as its source.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseStorage<DB> {
    db: DB,
}

impl<DB: DatabaseRef + Sync> DatabaseStorage<DB> {
    /// The pre-state `db` holds.
    pub fn new(db: DB) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// The hashes `BLOCKHASH` can read in block `number`: its 256 ancestors' (fewer near the
    /// genesis), for [`EvmVm::from_env`](crate::EvmVm::from_env). Read up front, 256 lookups,
    /// so the workers never wait on the database for them.
    pub fn recent_block_hashes(&self, number: u64) -> Result<HashMap<u64, B256>, DB::Error> {
        (number.saturating_sub(256)..number).map(|n| Ok((n, self.db.block_hash_ref(n)?))).collect()
    }
}

impl<DB: DatabaseRef + Sync> Storage<EvmKey, EvmValue> for DatabaseStorage<DB> {
    type Error = DB::Error;

    fn read(&self, key: &EvmKey) -> Result<Option<EvmValue>, DB::Error> {
        match *key {
            EvmKey::Account(address) => {
                let Some(info) = self.db.basic_ref(address)? else { return Ok(None) };
                let mut basic = AccountBasic::from_revm(&info);
                let code_missing = basic.code.as_ref().is_none_or(|code| code.is_empty());
                if info.code_hash != KECCAK_EMPTY && code_missing {
                    basic.code = Some(self.db.code_by_hash_ref(info.code_hash)?);
                }
                Ok(Some(EvmValue::Account(AccountState { info: Some(basic), storage_epoch: 0 })))
            }
            EvmKey::Storage(address, slot) => {
                let value = self.db.storage_ref(address, slot)?;
                Ok((!value.is_zero()).then_some(EvmValue::Storage(SlotValue { value, epoch: 0 })))
            }
        }
    }
}

impl EvmTx {
    /// The transaction `tx` as revm executes it, by alloy-evm's conversion (the one its block
    /// executor uses).
    pub fn from_recovered(tx: &Recovered<TxEnvelope>) -> Self {
        EvmTx(TxEnv::from_recovered_tx(tx.inner(), tx.signer()))
    }
}
