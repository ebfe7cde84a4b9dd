//! revm behind blockstm's [`Vm`] interface.
//!
//! Each execution builds a revm instance over a [`Database`] that reads through the executor's
//! [`TxnView`], runs the transaction with a handler that leaves the beneficiary alone, and
//! turns revm's state diff into writes:
//!
//! - an account is written only when it differs from what the transaction read (touching an
//!   account, or calling it without value, writes nothing, so popular contracts are not a point
//!   of conflict); a self-destructed account becomes absent with its storage epoch bumped; a
//!   created one gets a new epoch; a touched empty one is removed under EIP-161;
//! - each storage slot whose value changed is written with its account's epoch;
//! - the fee is credited to the beneficiary as a [`BalanceCredit`] delta, after the writes (as
//!   revm pays it after execution).

use crate::bal::TxAccesses;
use crate::chain::EthBlock;
use crate::state::{AccountBasic, AccountState, BalanceCredit, EvmKey, EvmValue, SlotValue};
use alloy_evm::EvmEnv;
use alloy_primitives::map::AddressMap;
use alloy_primitives::{Address, B256, Bloom, Log, U256};
use blockstm_executor::{Halt, TxnIndex, TxnView, Vm};
use revm::ExecuteEvm;
use revm::bytecode::Bytecode;
use revm::context::FrameStack;
use revm::context::result::{EVMError, HaltReason, InvalidTransaction};
use revm::context::{BlockEnv, CfgEnv, Context, Journal, JournalTr, LocalContext, TxEnv};
use revm::context_interface::cfg::GasParams;
use revm::context_interface::{Block, Cfg, ContextTr, Transaction};
use revm::database_interface::{DBErrorMarker, Database};
use revm::handler::{EthPrecompiles, instructions::EthInstructions};
use revm::handler::{EvmTr, FrameResult, Handler, MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{KECCAK_EMPTY, StorageKey, StorageValue};
use revm::state::EvmState;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

/// A transaction as revm executes it (sender recovered, fields as signed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmTx(pub TxEnv);

/// What a transaction's execution produced: the fields of its receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmReceipt {
    /// EIP-2718 type (0 for legacy).
    pub tx_type: u8,
    /// Whether it succeeded (status 1).
    pub success: bool,
    /// Gas used, after refunds.
    pub gas_used: u64,
    /// Logs emitted.
    pub logs: Vec<Log>,
    /// The bloom filter of the logs (computed where the transaction executes, so that blocks
    /// of many logs do not hash them all on one thread after the block).
    pub logs_bloom: Bloom,
    /// What the transaction accessed, when its VM records it ([`EvmVm::recording_accesses`]):
    /// the makings of its entries in the block-level access list.
    pub accesses: Option<Box<TxAccesses>>,
    /// The journal's state at the end of the transaction, when its VM keeps it
    /// ([`EvmVm::keeping_journals`]).
    pub journal: Option<Box<TxJournal>>,
}

/// What one execution of a transaction left in revm's journal, as revm hands it to
/// `State::commit` (every account and slot it loaded, each with its value when the transaction
/// began and when it ended), and the fee it pays the beneficiary, which this VM credits as a
/// delta after the transaction rather than in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxJournal {
    /// The journal's state, without the fee.
    pub state: EvmState,
    /// The fee credited to the beneficiary after the transaction.
    pub fee: U256,
}

/// Why a transaction could not be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvmError {
    /// The executor halted the execution (a blocked read); never final.
    Halted,
    /// The transaction is invalid against the state it saw (nonce, balance, gas limit, ...).
    InvalidTransaction(String),
    /// The block environment is invalid for the transaction.
    InvalidHeader(String),
    /// State the transaction needs is missing from the fixture (a block hash).
    MissingState(String),
    /// Any other failure reported by revm.
    Other(String),
}

impl From<Halt> for EvmError {
    fn from(_: Halt) -> Self {
        EvmError::Halted
    }
}

impl fmt::Display for EvmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvmError::Halted => f.write_str("halted by the executor"),
            EvmError::InvalidTransaction(e) => write!(f, "invalid transaction: {e}"),
            EvmError::InvalidHeader(e) => write!(f, "invalid block header: {e}"),
            EvmError::MissingState(e) => write!(f, "missing state: {e}"),
            EvmError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EvmError {}

/// Where `BLOCKHASH` finds the hashes of the blocks before this one: read when a transaction
/// executes it (revm asks only for the 256 blocks before this one), so a block that never
/// executes it costs no lookup.
pub trait BlockHashes: Sync {
    /// The hash of block `number`; `Ok(None)` if this source does not hold it; `Err` names
    /// why it could not be read.
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String>;
}

impl<S: std::hash::BuildHasher + Sync> BlockHashes for HashMap<u64, B256, S> {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        Ok(self.get(&number).copied())
    }
}

impl<T: BlockHashes + Send + ?Sized> BlockHashes for Arc<T> {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        (**self).block_hash(number)
    }
}

impl<T: BlockHashes + ?Sized> BlockHashes for &T {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        (**self).block_hash(number)
    }
}

/// The EVM of one block: its environment, fork rules, and where its block hashes are read
/// (`H`: a map of the fixture's by default, a client's database through the client API).
#[derive(Clone, Debug)]
pub struct EvmVm<H = Arc<HashMap<u64, B256>>> {
    spec: SpecId,
    block: BlockEnv,
    cfg: CfgEnv,
    block_hashes: H,
    recording: Recording,
}

/// What an [`EvmVm`] keeps in each receipt beyond its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recording {
    Nothing,
    /// The transaction's entries of the block-level access list.
    Accesses,
    /// The journal's state.
    Journal,
}

impl EvmVm {
    /// The VM for `block`.
    pub fn new(block: &EthBlock) -> Self {
        Self::from_env(block.evm_env(), Arc::clone(&block.block_hashes))
    }
}

impl<H: BlockHashes> EvmVm<H> {
    /// The VM for a block whose environment a client built: alloy-evm's `EvmEnv` (chain id,
    /// fork and the client's other settings in `cfg_env`, the block's fields in `block_env`),
    /// with `block_hashes` for `BLOCKHASH` (a map, or a [`DatabaseStorage`](crate::DatabaseStorage)
    /// reading its database when asked).
    pub fn from_env(env: EvmEnv, block_hashes: H) -> Self {
        Self {
            spec: env.cfg_env.spec,
            block: env.block_env,
            cfg: env.cfg_env,
            block_hashes,
            recording: Recording::Nothing,
        }
    }

    /// This VM, keeping in each receipt its transaction's entries of the block-level access
    /// list ([`TxAccesses`]), made where it executes.
    pub fn recording_accesses(mut self) -> Self {
        self.recording = Recording::Accesses;
        self
    }

    /// This VM, keeping in each receipt its transaction's journal state ([`TxJournal`]), for
    /// a caller that commits the transactions one by one.
    pub fn keeping_journals(mut self) -> Self {
        self.recording = Recording::Journal;
        self
    }

    /// The block's beneficiary (the fee recipient).
    pub fn beneficiary(&self) -> Address {
        self.block.beneficiary
    }

    /// The fork this VM executes under.
    pub fn spec(&self) -> SpecId {
        self.spec
    }

    /// revm's context over `db`: as `Context::mainnet().with_db(db).with_block(..).with_cfg(..)`
    /// builds it, without touching an atomic another core writes. `Context::mainnet()` clones
    /// revm's process-wide gas table `Arc` (for the default fork), and a clone of `self.cfg`
    /// clones this VM's, which every worker shares: each a reference count written from both
    /// cores in every transaction. This thread's copy of the configuration is cloned instead.
    /// The configuration is a function of the fork (`EvmVm::new`), so the copy is keyed by it.
    fn context<DB: Database>(&self, db: DB, tx: TxEnv) -> MainnetContext<DB> {
        let cfg = THREAD_CFG.with_borrow_mut(|cached| match cached {
            Some((spec, cfg)) if *spec == self.spec => cfg.clone(),
            _ => {
                // A deep copy: a gas table of its own, so its count is this thread's alone.
                let mut cfg = self.cfg.clone();
                cfg.gas_params = GasParams::new(Arc::new(*cfg.gas_params.table()));
                cached.insert((self.spec, cfg)).1.clone()
            }
        });
        let mut journaled_state = Journal::new(db);
        // What `Context::with_cfg` does to the journal (revm's `sync_cfg_to_journal`).
        journaled_state.set_spec_id(cfg.spec);
        journaled_state
            .set_eip7708_config(cfg.is_eip7708_disabled(), cfg.is_eip8246_delayed_clear_disabled());
        Context {
            block: self.block.clone(),
            tx,
            cfg,
            journaled_state,
            chain: (),
            local: LocalContext::default(),
            error: Ok(()),
        }
    }
}

thread_local! {
    /// This thread's copy of the last configuration it executed with (see [`EvmVm::context`]).
    static THREAD_CFG: RefCell<Option<(SpecId, CfgEnv)>> = const { RefCell::new(None) };
}

impl<H: BlockHashes> Vm for EvmVm<H> {
    type Key = EvmKey;
    type Value = EvmValue;
    type Transaction = EvmTx;
    type Output = EvmReceipt;
    type Error = EvmError;
    type Delta = BalanceCredit;

    fn execute<V: TxnView<EvmKey, EvmValue, BalanceCredit>>(
        &self,
        _txn_idx: TxnIndex,
        txn: &EvmTx,
        view: &mut V,
    ) -> Result<EvmReceipt, EvmError> {
        let mut db = ViewDb { view, block_hashes: &self.block_hashes, accounts: AddressMap::default() };
        let ctx = self.context(&mut db, txn.0.clone());
        // `build_mainnet`, except for the frame stack: it preallocates eight interpreters (a
        // 32 KiB operand stack each, and a clone of revm's one shared empty-bytecode `Arc`,
        // which worker threads then bounce between cores), while a transaction needs one per
        // call depth it reaches. Grown on demand instead: the preallocation was a large share of a
        // worker's time on native transfers (`blockstm bench -w eth-native`).
        let mut evm = MainnetEvm {
            ctx,
            inspector: (),
            instruction: EthInstructions::new_mainnet_with_spec(self.spec),
            precompiles: EthPrecompiles::new(self.spec),
            frame_stack: FrameStack::new(),
        };
        let mut handler = FeeHandler { fee: Cell::new(U256::ZERO), _db: std::marker::PhantomData };
        let result = handler.run(&mut evm);
        let state = evm.finalize();
        let fee = handler.fee.get();
        drop((evm, handler));
        let result = result.map_err(|e| match e {
            EVMError::Database(DbError::Halt) => EvmError::Halted,
            EVMError::Database(DbError::MissingBlockHash(n)) => {
                EvmError::MissingState(format!("no hash for block {n}"))
            }
            EVMError::Database(DbError::BlockHash(n, e)) => {
                EvmError::MissingState(format!("the hash of block {n} could not be read: {e}"))
            }
            EVMError::Transaction(e) => EvmError::InvalidTransaction(e.to_string()),
            EVMError::Header(e) => EvmError::InvalidHeader(e.to_string()),
            other => EvmError::Other(other.to_string()),
        })?;
        let clear_empty = self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        db.write_state(&state, clear_empty)?;
        db.view.apply_delta(
            EvmKey::Account(self.block.beneficiary),
            BalanceCredit { amount: fee, clear_empty },
        )?;
        let success = result.is_success();
        let gas_used = result.tx_gas_used();
        let logs = result.into_logs();
        let logs_bloom = alloy_primitives::logs_bloom(&logs);
        let (accesses, journal) = match self.recording {
            Recording::Nothing => (None, None),
            Recording::Accesses => {
                (Some(Box::new(TxAccesses::record(state, self.block.beneficiary, fee))), None)
            }
            Recording::Journal => (None, Some(Box::new(TxJournal { state, fee }))),
        };
        Ok(EvmReceipt { tx_type: txn.0.tx_type, success, gas_used, logs, logs_bloom, accesses, journal })
    }

    /// The transactions' gas limits: what each may spend, known before it runs.
    fn cost_estimate(&self, txns: &[EvmTx]) -> Option<u64> {
        Some(txns.iter().fold(0u64, |sum, EvmTx(tx)| sum.saturating_add(tx.gas_limit)))
    }

    /// The beneficiary: every transaction credits it its fee (a delta), few read it.
    fn accumulator(&self) -> Option<EvmKey> {
        Some(EvmKey::Account(self.block.beneficiary))
    }

    /// Each transaction is hinted with the last lower transaction that changed its sender's or
    /// its recipient's account as far as the transaction fields tell: sent from it, or sent
    /// value to it. Every transaction reads both accounts, so these are real dependencies (the
    /// nonce chain of one sender above all: a pool paying out from the beneficiary, an exchange
    /// hot wallet). Transfers made inside contract code are not visible here and not hinted.
    fn dependency_hints(&self, txns: &[EvmTx]) -> Vec<Option<TxnIndex>> {
        // Sized for a sender and a recipient per transaction: growing it rehashed every entry
        // several times over a gigagas block (the hints run on one thread before the workers).
        let mut last_change: AddressMap<TxnIndex> =
            AddressMap::with_capacity_and_hasher(2 * txns.len(), Default::default());
        txns.iter()
            .enumerate()
            .map(|(i, EvmTx(tx))| {
                let to = tx.kind.to().copied();
                let hint = [Some(tx.caller), to]
                    .into_iter()
                    .flatten()
                    .filter_map(|address| last_change.get(&address).copied())
                    .max();
                last_change.insert(tx.caller, i);
                if let Some(to) = to.filter(|_| !tx.value.is_zero()) {
                    last_change.insert(to, i);
                }
                hint
            })
            .collect()
    }
}

/// A failure of the database revm reads through.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DbError {
    /// The view halted the execution.
    Halt,
    /// `BLOCKHASH` of a block the source has no hash for.
    MissingBlockHash(u64),
    /// `BLOCKHASH` of a block whose hash could not be read.
    BlockHash(u64, String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Halt => f.write_str("halted by the executor"),
            DbError::MissingBlockHash(n) => write!(f, "no hash for block {n}"),
            DbError::BlockHash(n, e) => write!(f, "the hash of block {n} could not be read: {e}"),
        }
    }
}

impl std::error::Error for DbError {}
impl DBErrorMarker for DbError {}

impl From<Halt> for DbError {
    fn from(_: Halt) -> Self {
        DbError::Halt
    }
}

/// revm's database for one execution: reads through the view, remembering the accounts read
/// (to write only what changed, and for the storage epoch).
struct ViewDb<'a, V, H> {
    view: &'a mut V,
    block_hashes: &'a H,
    /// alloy's map for addresses (foldhash, seeded per thread: `ahash::RandomState::new()`
    /// bumps one process-wide atomic counter, written from every core once per transaction).
    accounts: AddressMap<AccountState>,
}

/// The account at `address` as this execution first read it: from `accounts`, else read
/// through the view and remembered. One hash lookup when remembered (every storage read asks
/// for its account's epoch).
fn cached_account<'m, V: TxnView<EvmKey, EvmValue, BalanceCredit>>(
    view: &mut V,
    accounts: &'m mut AddressMap<AccountState>,
    address: Address,
) -> Result<&'m AccountState, Halt> {
    Ok(match accounts.entry(address) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(match view.read(&EvmKey::Account(address))? {
            Some(EvmValue::Account(account)) => account,
            // A slot value at an account key cannot be written by this VM.
            Some(EvmValue::Storage(_)) | None => AccountState::default(),
        }),
    })
}

impl<V: TxnView<EvmKey, EvmValue, BalanceCredit>, H> ViewDb<'_, V, H> {
    fn account(&mut self, address: Address) -> Result<&AccountState, Halt> {
        cached_account(self.view, &mut self.accounts, address)
    }

    /// Records revm's state diff as writes (see the module docs).
    fn write_state(&mut self, state: &EvmState, clear_empty: bool) -> Result<(), Halt> {
        for (&address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let before = cached_account(self.view, &mut self.accounts, address)?;
            if account.is_selfdestructed() {
                let destroyed = AccountState { info: None, storage_epoch: before.storage_epoch + 1 };
                self.view.write(EvmKey::Account(address), EvmValue::Account(destroyed));
                continue;
            }
            let storage_epoch = before.storage_epoch + u32::from(account.is_created());
            let exists = !(clear_empty && AccountBasic::revm_is_empty(&account.info));
            // `before == after`, compared without building (and cloning the code into) `after`.
            let unchanged = storage_epoch == before.storage_epoch
                && match &before.info {
                    Some(basic) => exists && basic.same_as_revm(&account.info),
                    None => !exists,
                };
            if !unchanged {
                let info = exists.then(|| AccountBasic::from_revm(&account.info));
                self.view
                    .write(EvmKey::Account(address), EvmValue::Account(AccountState { info, storage_epoch }));
            }
            for (slot, value) in account.changed_storage_slots() {
                let value = SlotValue { value: value.present_value, epoch: storage_epoch };
                self.view.write(EvmKey::Storage(address, *slot), EvmValue::Storage(value));
            }
        }
        Ok(())
    }
}

impl<V: TxnView<EvmKey, EvmValue, BalanceCredit>, H: BlockHashes> Database for ViewDb<'_, V, H> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<revm::state::AccountInfo>, DbError> {
        Ok(self.account(address)?.info.as_ref().map(AccountBasic::to_revm))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        // Accounts always carry their code (the loader attaches it; a deployment writes it), so
        // revm asks only for the empty code.
        debug_assert_eq!(code_hash, KECCAK_EMPTY, "code is carried by the account");
        Ok(crate::state::empty_code())
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<StorageValue, DbError> {
        let epoch = self.account(address)?.storage_epoch;
        Ok(match self.view.read(&EvmKey::Storage(address, index))? {
            Some(EvmValue::Storage(slot)) if slot.epoch == epoch => slot.value,
            _ => U256::ZERO,
        })
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        match self.block_hashes.block_hash(number) {
            Ok(Some(hash)) => Ok(hash),
            Ok(None) => Err(DbError::MissingBlockHash(number)),
            Err(e) => Err(DbError::BlockHash(number, e)),
        }
    }
}

/// revm's mainnet handler, except that the fee is not paid to the beneficiary in the journal
/// (which would read and write the beneficiary's account in every transaction) but recorded,
/// to be credited as a delta.
struct FeeHandler<DB> {
    fee: Cell<U256>,
    _db: std::marker::PhantomData<DB>,
}

impl<DB: Database> Handler for FeeHandler<DB> {
    type Evm = MainnetEvm<MainnetContext<DB>>;
    type Error = EVMError<DB::Error, InvalidTransaction>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        // As revm's `post_execution::reward_beneficiary`, without touching the journal.
        let ctx = evm.ctx();
        if ctx.cfg().is_fee_charge_disabled() {
            return Ok(());
        }
        let basefee = ctx.block().basefee() as u128;
        let effective_gas_price = ctx.tx().effective_gas_price(basefee);
        let coinbase_gas_price = if ctx.cfg().spec().is_enabled_in(SpecId::LONDON) {
            effective_gas_price.saturating_sub(basefee)
        } else {
            effective_gas_price
        };
        let gas = exec_result.gas();
        let used = gas.used().saturating_sub(gas.reservoir());
        self.fee.set(U256::from(coinbase_gas_price * used as u128));
        Ok(())
    }
}
