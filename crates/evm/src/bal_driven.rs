//! Executing a block from its block-level access list (EIP-7928), as a validator does.
//!
//! The list gives, for every location the block changes, its value after each transaction
//! that changed it. So the state every transaction starts from is known before anything runs:
//! the pre-state overlaid with the list's changes at lower block access indices. All
//! transactions then execute at once, each against that overlay, with no speculation and no
//! dependency between them; the threads claim transactions from a counter.
//!
//! Then, on the calling thread and in block order, each transaction is checked and committed:
//!
//! 1. every value it read is compared with the true state before it (the pre-state and the
//!    committed writes of the transactions below): the overlay is only as good as the list, so
//!    a wrong or missing entry shows here. A read that differs makes the transaction execute
//!    again on the true state (counted in `stats.aborts`); with a correct list this happens
//!    only where the list cannot say what the state holds (an account's storage after it was
//!    destroyed and re-created earlier in the block, an empty account's existence before
//!    EIP-161);
//! 2. its writes are committed, their storage epochs rebased on the true ones (the overlay
//!    reports each account's epoch before the block), then its fee.
//!
//! The result is therefore sequential execution's, whatever the list says. Last, the access
//! list those executions make ([`BalBuilder`](crate::bal)) must equal the given one, entry for
//! entry: a list that is wrong in any way (a missing or extra account, slot or change, a wrong
//! value or index) rejects the block, naming the first location where they part and the
//! transaction of that index. A malformed list (unsorted, duplicated, out of range) is
//! rejected before anything runs.
//!
//! A block that runs on one thread (one configured, or a block small or cheap enough that the
//! configuration's adaptive rules send Block-STM to its sequential path) gains nothing from the
//! overlay: its transactions run one after another on the true state, with the list built as
//! they commit, and that list is compared with the given one in the same way.

use crate::bal::BlockAccessList;
use crate::client::{
    BlockExecution, BlockInput, ClientError, CommitSteps, ExecuteOptions, TransactionsRun,
    execute_block_with, run_block,
};
use crate::state::{AccountBasic, AccountState, BalanceCredit, EvmKey, EvmValue, SlotValue};
use crate::vm::{BlockHashes, EvmError, EvmReceipt, EvmTx, EvmVm};
use alloy_consensus::Transaction as _;
use alloy_eip7928::AccountChanges;
use alloy_evm::block::{BlockExecutionError, BlockValidationError};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_primitives::map::AddressMap;
use alloy_primitives::{Address, U256};
use blockstm_executor::{BlockError, Config, Delta, Halt, Stats, Storage, StorageError, TxnView, Vm};
use blockstm_sync::Mutex;
use blockstm_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use revm::bytecode::Bytecode;
use revm::database_interface::DatabaseRef;
use revm::primitives::KECCAK_EMPTY;
use revm::primitives::hardfork::SpecId;
use revm::state::bal::{AccountBal, Bal, BlockAccessIndex};
use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Why a block's access list was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessListError {
    /// The list breaks EIP-7928's form: order, uniqueness, or an index beyond the block.
    Malformed(String),
    /// The list holds code that is not valid bytecode.
    Code {
        /// The account.
        address: Address,
        /// Why it could not be decoded.
        message: String,
    },
    /// The list differs from what the block does, first at this location.
    Mismatch {
        /// The block access index of the difference (0: before the transactions; `i + 1`:
        /// transaction `i`; `n + 1`: after the `n` transactions), if it has one (a whole
        /// account or a read has none).
        index: Option<u64>,
        /// The transaction count of the block, to name the index.
        transactions: usize,
        /// The account.
        address: Address,
        /// The slot, for a storage entry.
        slot: Option<U256>,
        /// What differs.
        what: String,
    },
}

impl fmt::Display for AccessListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessListError::Malformed(e) => write!(f, "malformed block access list: {e}"),
            AccessListError::Code { address, message } => {
                write!(f, "block access list: the code listed for {address} is invalid: {message}")
            }
            AccessListError::Mismatch { index, transactions, address, slot, what } => {
                f.write_str("block access list differs from the block's execution")?;
                match index {
                    Some(0) => f.write_str(" before the transactions (index 0)")?,
                    Some(i) if *i <= *transactions as u64 => {
                        write!(f, " at transaction {} (index {i})", i - 1)?
                    }
                    Some(i) => write!(f, " after the transactions (index {i})")?,
                    None => {}
                }
                write!(f, ": account {address}")?;
                if let Some(slot) = slot {
                    write!(f, ", slot {slot:#x}")?;
                }
                write!(f, ": {what}")
            }
        }
    }
}

impl std::error::Error for AccessListError {}

impl AccessListError {
    /// The list's error a block executor rejected a block with: alloy-evm's
    /// `BlockExecutionError` holds it as a validation error (the block is invalid), as
    /// [`BlockStmExecutor::execute_block_from_access_list`](crate::BlockStmExecutor::execute_block_from_access_list)
    /// returns it.
    pub fn in_block_error(error: &BlockExecutionError) -> Option<&AccessListError> {
        match error {
            BlockExecutionError::Validation(BlockValidationError::Other(error)) => error.downcast_ref(),
            _ => None,
        }
    }
}

impl From<AccessListError> for BlockExecutionError {
    fn from(error: AccessListError) -> Self {
        BlockValidationError::other(error).into()
    }
}

/// Executes `block` over the pre-state `db` from its access list `list`, every transaction at
/// once on `config`'s threads (see the module docs). The result is the sequential executor's;
/// the block is rejected with [`ClientError::AccessList`] if `list` is not exactly the block's.
pub fn execute_block_from_access_list<DB, C>(
    db: &DB,
    chain: &C,
    block: BlockInput<'_>,
    list: &BlockAccessList,
    config: Config,
) -> Result<BlockExecution, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    C: EthExecutorSpec,
{
    let transactions = block.transactions.len();
    let overlay = !one_thread(block.transactions.iter().map(|tx| tx.gas_limit()), config);
    let out = match checked_list(list, transactions, overlay)? {
        // On one thread the overlay saves nothing: the transactions run one after another on
        // the true state, and the list they make is compared with the given one all the same.
        None => execute_block_with(db, chain, block, ExecuteOptions::sequential().with_block_access_list())?,
        Some(bal) => run_block(db, chain, block, true, |storage, vm, txns, steps| {
            from_access_list(storage, &vm, txns, &bal, config.threads(), steps)
        })?,
    };
    let built = out
        .block_access_list
        .as_ref()
        .ok_or_else(|| ClientError::System(BlockExecutionError::msg("no access list built")))?;
    same_list(built, list, transactions)?;
    Ok(out)
}

/// Whether `built`, the list a block of `transactions` made, is `list`: if not, the first
/// location where they part.
pub(crate) fn same_list(
    built: &BlockAccessList,
    list: &BlockAccessList,
    transactions: usize,
) -> Result<(), AccessListError> {
    if built == list {
        return Ok(());
    }
    Err(first_mismatch(built, list, transactions).unwrap_or(AccessListError::Mismatch {
        index: None,
        transactions,
        address: Address::ZERO,
        slot: None,
        what: "the lists differ where no entry does".into(),
    }))
}

/// What one transaction saw of a location.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// An account: its basics (`None`: absent) and the storage epoch reported with them.
    Account(Option<AccountBasic>, u32),
    /// A slot's value (zero when absent or of an earlier epoch).
    Slot(U256),
}

/// A read of one execution: the location, what it saw, and whether the commit must check it
/// against the true state (a value the list cannot vouch for; see [`View::read`]).
struct Read {
    key: EvmKey,
    seen: Seen,
    check: bool,
}

/// One execution of a transaction and what it did.
struct Run {
    result: Result<EvmReceipt, Failure>,
    reads: Vec<Read>,
    writes: Vec<(EvmKey, EvmValue)>,
    deltas: Vec<(EvmKey, BalanceCredit)>,
}

/// Why an execution produced no receipt.
enum Failure {
    Vm(EvmError),
    Panic(String),
    Storage(StorageError),
}

/// What a transaction reads from, over `storage` (the pre-state and the changes before the
/// transactions).
enum Below<'a> {
    /// The list's overlay: what the list says the state holds before transaction `index - 1`.
    List { bal: &'a Bal, index: BlockAccessIndex, clear_empty: bool },
    /// The true state: the writes committed so far.
    Committed(&'a Committed),
}

type Committed = HashMap<EvmKey, EvmValue, ahash::RandomState>;

/// A transaction's view: reads from `below` over `storage`, writes and deltas kept.
struct View<'a, S> {
    storage: &'a S,
    below: Below<'a>,
    run: Run,
    failure: Option<StorageError>,
    /// Accounts whose storage before the block the list may not show as it is for this
    /// transaction (created, destroyed or re-coded below it): their slots read from the
    /// pre-state are checked.
    unsure_storage: Vec<Address>,
}

impl<S: Storage<EvmKey, EvmValue>> View<'_, S> {
    fn base(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, Halt> {
        if let Below::Committed(committed) = &self.below
            && let Some(value) = committed.get(key)
        {
            return Ok(Some(value.clone()));
        }
        self.storage.read(key).map_err(|e| {
            self.failure = Some(StorageError::new(e));
            Halt::new()
        })
    }

    /// The storage epoch this view reported for `address` (the VM reads an account before its
    /// storage).
    fn epoch(&self, address: Address) -> u32 {
        seen_epoch(&self.run.reads, address).unwrap_or(0)
    }
}

/// The storage epoch reported with `address` in `reads`.
fn seen_epoch(reads: &[Read], address: Address) -> Option<u32> {
    reads.iter().rev().find_map(|read| match (&read.key, &read.seen) {
        (EvmKey::Account(a), Seen::Account(_, epoch)) if *a == address => Some(*epoch),
        _ => None,
    })
}

impl<S: Storage<EvmKey, EvmValue>> TxnView<EvmKey, EvmValue, BalanceCredit> for View<'_, S> {
    /// From the list: an account's basics and a slot's value are the list's last change below
    /// this transaction, else the pre-state's. If the list is the block's, that is the true
    /// value, which the final comparison of the lists proves; so those reads are not checked.
    /// Checked are only the values the list cannot state: an account that is empty or absent
    /// before EIP-161 (the list does not say whether it exists) or that the list shows
    /// destroyed, and a slot read from the pre-state of an account created, destroyed or
    /// given code below this transaction (its old storage may be gone).
    fn read(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, Halt> {
        let base = self.base(key)?;
        let (value, seen, check) = match (*key, &self.below) {
            (EvmKey::Account(address), Below::List { bal, index, clear_empty }) => {
                let (info, epoch) = match base {
                    Some(EvmValue::Account(AccountState { info, storage_epoch })) => (info, storage_epoch),
                    _ => (None, 0),
                };
                let account = bal.accounts.get(&address);
                let destroyed =
                    account.is_some_and(|account| destroyed_below(account, info.as_ref(), *index));
                if account.is_some_and(|account| storage_unsure(account, info.as_ref(), *index)) {
                    self.unsure_storage.push(address);
                }
                let info = overlay_account(info, account, *index, *clear_empty || destroyed);
                let check = destroyed || (!*clear_empty && info.as_ref().is_none_or(AccountBasic::is_empty));
                let value = match &info {
                    Some(info) => Some(EvmValue::Account(AccountState {
                        info: Some(info.clone()),
                        storage_epoch: epoch,
                    })),
                    None => (epoch > 0)
                        .then_some(EvmValue::Account(AccountState { info: None, storage_epoch: epoch })),
                };
                (value, Seen::Account(info, epoch), check)
            }
            (EvmKey::Storage(address, slot), Below::List { bal, index, .. }) => {
                let epoch = self.epoch(address);
                let listed = bal
                    .accounts
                    .get(&address)
                    .and_then(|account| account.storage.storage.get(&slot))
                    .and_then(|writes| writes.get(*index));
                let unsure = listed.is_none() && self.unsure_storage.contains(&address);
                let value = listed.unwrap_or(match base {
                    Some(EvmValue::Storage(SlotValue { value, epoch: e })) if e == epoch => value,
                    _ => U256::ZERO,
                });
                (Some(EvmValue::Storage(SlotValue { value, epoch })), Seen::Slot(value), unsure)
            }
            (EvmKey::Account(_), Below::Committed(_)) => {
                let seen = match &base {
                    Some(EvmValue::Account(AccountState { info, storage_epoch })) => {
                        Seen::Account(info.clone(), *storage_epoch)
                    }
                    _ => Seen::Account(None, 0),
                };
                (base, seen, false)
            }
            (EvmKey::Storage(..), Below::Committed(_)) => (base, Seen::Slot(U256::ZERO), false),
        };
        if check || matches!(key, EvmKey::Account(_)) {
            self.run.reads.push(Read { key: *key, seen, check });
        }
        Ok(value)
    }

    fn write(&mut self, key: EvmKey, value: EvmValue) {
        self.run.writes.push((key, value));
    }

    fn apply_delta(&mut self, key: EvmKey, delta: BalanceCredit) -> Result<(), Halt> {
        self.run.deltas.push((key, delta));
        Ok(())
    }
}

/// `info` with the list's changes to its account below `index` applied (`None`: absent; an
/// account the changes leave empty is absent if `clear_empty`).
fn overlay_account(
    info: Option<AccountBasic>,
    account: Option<&AccountBal>,
    index: BlockAccessIndex,
    clear_empty: bool,
) -> Option<AccountBasic> {
    let Some(account) = account else { return info };
    let nonce = account.account_info.nonce.get(index);
    let balance = account.account_info.balance.get(index);
    let code = account.account_info.code.get(index);
    if nonce.is_none() && balance.is_none() && code.is_none() {
        return info;
    }
    let mut basic = info.unwrap_or_else(|| AccountBasic::with_balance(U256::ZERO));
    if let Some(nonce) = nonce {
        basic.nonce = nonce;
    }
    if let Some(balance) = balance {
        basic.balance = balance;
    }
    if let Some((code_hash, code)) = code {
        basic.code_hash = code_hash;
        basic.code = (code_hash != KECCAK_EMPTY).then_some(code);
    }
    (!(clear_empty && basic.is_empty())).then_some(basic)
}

/// Whether `account`'s list entries show it destroyed below `index`: its code changed to none
/// while its nonce was 0 (a self-destruct leaves an account empty; a delegation cleared under
/// EIP-7702 leaves its nonce raised). `info` is the account before the block.
fn destroyed_below(account: &AccountBal, info: Option<&AccountBasic>, index: BlockAccessIndex) -> bool {
    let nonce_before = info.map_or(0, |info| info.nonce);
    account.account_info.code.writes.iter().take_while(|(at, _)| *at < index).any(|(at, (code_hash, _))| {
        *code_hash == KECCAK_EMPTY
            && account.account_info.nonce.get(BlockAccessIndex::new(at.get() + 1)).unwrap_or(nonce_before)
                == 0
    })
}

/// Whether the account's storage before the block may not be what a transaction at `index`
/// sees of it: the list shows its code changed below `index` (created, destroyed, delegated),
/// or its nonce raised from 0 (created with no code).
fn storage_unsure(account: &AccountBal, info: Option<&AccountBasic>, index: BlockAccessIndex) -> bool {
    let code = account.account_info.code.writes.first().is_some_and(|(at, _)| *at < index);
    let nonce = account.account_info.nonce.writes.first().is_some_and(|(at, _)| *at < index);
    code || (info.is_none_or(|info| info.nonce == 0) && nonce)
}

/// One execution of transaction `txn_idx` over `below`.
fn execute<S: Storage<EvmKey, EvmValue> + BlockHashes>(
    vm: &EvmVm<&S>,
    storage: &S,
    below: Below<'_>,
    txn_idx: usize,
    txn: &EvmTx,
) -> Run {
    let run = Run {
        result: Err(Failure::Vm(EvmError::Halted)),
        reads: Vec::new(),
        writes: Vec::new(),
        deltas: Vec::new(),
    };
    let mut view = View { storage, below, run, failure: None, unsure_storage: Vec::new() };
    // AssertUnwindSafe: after a panic only the view's plain data is looked at.
    let result = catch_unwind(AssertUnwindSafe(|| vm.execute(txn_idx, txn, &mut view)));
    let mut run = view.run;
    run.result = match (result, view.failure) {
        (_, Some(failure)) => Err(Failure::Storage(failure)),
        (Ok(Ok(receipt)), None) => Ok(receipt),
        (Ok(Err(error)), None) => Err(Failure::Vm(error)),
        (Err(payload), None) => Err(Failure::Panic(panic_message(&*payload))),
    };
    run
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (_, Some(message)) => message.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// Blocks whose transactions may spend less gas than this run on the calling thread alone:
/// starting a thread costs more than they save (tens of microseconds against a few).
const MIN_PARALLEL_GAS: u64 = 400_000;

/// Whether a block of transactions with these gas limits runs on one thread: on one thread
/// configured, below [`MIN_PARALLEL_GAS`], and, with `config`'s adaptive choice on, under its
/// rules for the sequential path (fewer transactions than `min_parallel_txns`, or gas limits
/// averaging below `min_mean_cost`: the threads would cost more than they save, as they would
/// Block-STM).
pub(crate) fn one_thread(gas_limits: impl ExactSizeIterator<Item = u64>, config: Config) -> bool {
    let txns = gas_limits.len();
    let gas: u64 = gas_limits.fold(0, u64::saturating_add);
    let mean = gas / txns.max(1) as u64;
    gas < MIN_PARALLEL_GAS
        || config.threads() == 1
        || (config.adaptive() && (txns < config.min_parallel_txns() || mean < config.min_mean_cost()))
}

/// `list` checked before a block of `transactions` runs from it: its form (EIP-7928's order,
/// uniqueness, indices within the block) and its code (each change valid bytecode), an error
/// naming what is wrong. With `overlay` (the list-driven executor reads it), it is converted
/// to revm's form, which checks the code as it converts; else `None`.
pub(crate) fn checked_list(
    list: &BlockAccessList,
    transactions: usize,
    overlay: bool,
) -> Result<Option<Bal>, AccessListError> {
    alloy_eip7928::validate_block_access_list(list, transactions)
        .map_err(|e| AccessListError::Malformed(e.to_string()))?;
    let bad_code = |account: &AccountChanges, e: &dyn fmt::Display| AccessListError::Code {
        address: account.address,
        message: e.to_string(),
    };
    if overlay {
        let bal = list
            .iter()
            .map(|account| AccountBal::clone_from_alloy(account).map_err(|e| bad_code(account, &e)));
        return bal.collect::<Result<_, _>>().map(Some);
    }
    for account in list {
        for change in &account.code_changes {
            Bytecode::new_raw_checked(change.new_code.clone()).map_err(|e| bad_code(account, &e))?;
        }
    }
    Ok(None)
}

/// The transactions of a block from its access list `bal` (see the module docs): executed at
/// once on `threads` threads, the calling thread one of them; whichever thread finds the next
/// transaction in block order executed commits it, and those after it that are ready (the
/// rolling commit: one committer at a time, under a lock).
pub(crate) fn from_access_list<S: Storage<EvmKey, EvmValue> + BlockHashes>(
    storage: &S,
    vm: &EvmVm<&S>,
    txns: &[EvmTx],
    bal: &Bal,
    threads: usize,
    steps: &mut CommitSteps<'_>,
) -> Result<TransactionsRun, ClientError> {
    let clear_empty = vm.spec().is_enabled_in(SpecId::SPURIOUS_DRAGON);
    let workers = threads.min(txns.len()).max(1);
    let mut stats = Stats::default();
    stats.threads = workers;
    let shared = Shared {
        slots: std::iter::repeat_with(|| Mutex::new(None)).take(txns.len()).collect(),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        committer: Mutex::new(Committer {
            next: 0,
            committed: Committed::default(),
            outputs: Vec::with_capacity(txns.len()),
            stats,
            steps,
            error: None,
        }),
    };
    let work = || {
        // Claims: each fetch_add hands out one index, so each transaction runs once. Relaxed:
        // a run reaches the committer through its slot's lock.
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            let Some(txn) = txns.get(i) else { break };
            let index = BlockAccessIndex::new(i as u64 + 1);
            let run = execute(vm, storage, Below::List { bal, index, clear_empty }, i, txn);
            *shared.slots[i].lock() = Some(run);
            shared.commit_ready(vm, storage, txns);
        }
    };
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 1..workers {
                scope.spawn(work);
            }
            work();
        });
    }
    // Every worker has left: whatever is executed and not yet committed is committed here.
    shared.commit_ready(vm, storage, txns);
    let Committer { next, committed, outputs, mut stats, error, .. } = shared.committer.into_inner();
    if let Some(error) = error {
        return Err(error);
    }
    if next < txns.len() && outputs.len() == next && !shared.stop.load(Ordering::Relaxed) {
        return Err(BlockError::Internal(format!("transaction {next} was not committed")).into());
    }
    stats.executions += txns.len().min(next);
    Ok(TransactionsRun { outputs, state: committed.into_iter().collect(), stats })
}

/// What the threads of a list-driven block share.
struct Shared<'a, 'b> {
    /// Each transaction's run, from its execution to its commit.
    slots: Vec<Mutex<Option<Run>>>,
    /// The next transaction to claim.
    next: AtomicUsize,
    /// Set by the committer when the block stops early (an error, the gas allowance).
    stop: AtomicBool,
    committer: Mutex<Committer<'a, 'b>>,
}

/// The committing side: the true state so far, and what the block produced.
struct Committer<'a, 'b> {
    /// The next transaction to commit.
    next: usize,
    committed: Committed,
    outputs: Vec<EvmReceipt>,
    stats: Stats,
    steps: &'a mut CommitSteps<'b>,
    error: Option<ClientError>,
}

impl Shared<'_, '_> {
    /// Commits the transactions executed at the head of the block, if no one else is.
    ///
    /// Lock order: the committer, then one slot at a time (workers take a slot alone). No
    /// executed transaction is left uncommitted: a worker fills its slot, then tries the
    /// committer's lock; a committer, after unlocking, looks again at the slot it stopped at.
    /// If the fill came after that look, the filler's try comes after the unlock too, and it
    /// either commits or fails to a committer who will look at the slot after its own unlock.
    /// (After the workers leave, the calling thread commits what is left.)
    fn commit_ready<S: Storage<EvmKey, EvmValue> + BlockHashes>(
        &self,
        vm: &EvmVm<&S>,
        storage: &S,
        txns: &[EvmTx],
    ) {
        loop {
            let Some(mut committer) = self.committer.try_lock() else { return };
            while committer.next < txns.len()
                && committer.error.is_none()
                && !self.stop.load(Ordering::Relaxed)
            {
                let i = committer.next;
                let Some(run) = self.slots[i].lock().take() else { break };
                // A panic while committing (the gas hook, the list's builder) fails the block
                // instead of escaping the thread scope.
                let committed =
                    catch_unwind(AssertUnwindSafe(|| committer.commit(vm, storage, txns, i, run)))
                        .unwrap_or_else(|payload| {
                            let message = format!("committing: {}", panic_message(&*payload));
                            Err(BlockError::HookPanic { txn_idx: i, message }.into())
                        });
                match committed {
                    Ok(ControlFlow::Continue(())) => committer.next += 1,
                    Ok(ControlFlow::Break(())) => {
                        committer.next += 1;
                        self.stop.store(true, Ordering::Relaxed);
                    }
                    Err(error) => {
                        committer.error = Some(error);
                        self.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            let next = committer.next;
            drop(committer);
            let ready = next < txns.len() && self.slots[next].lock().is_some();
            if !ready || self.stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

impl Committer<'_, '_> {
    /// Checks and commits transaction `txn_idx`'s `run` (see the module docs); `Break` when
    /// the block ends here.
    fn commit<S: Storage<EvmKey, EvmValue> + BlockHashes>(
        &mut self,
        vm: &EvmVm<&S>,
        storage: &S,
        txns: &[EvmTx],
        txn_idx: usize,
        run: Run,
    ) -> Result<ControlFlow<()>, ClientError> {
        // A run that failed may have been misled by a wrong list: it runs again on the true
        // state, where its failure is the block's.
        let misled = !matches!(run.result, Ok(_) | Err(Failure::Storage(_)))
            || !read_what_it_saw(storage, &self.committed, &run, txn_idx)?;
        let run = if misled {
            self.stats.aborts += 1;
            self.stats.executions += 1;
            execute(vm, storage, Below::Committed(&self.committed), txn_idx, &txns[txn_idx])
        } else {
            run
        };
        let receipt = match run.result {
            Ok(receipt) => receipt,
            Err(Failure::Vm(error)) => return Err(BlockError::Vm { txn_idx, error }.into()),
            Err(Failure::Panic(message)) => return Err(BlockError::Panic { txn_idx, message }.into()),
            Err(Failure::Storage(error)) => return Err(BlockError::Storage { txn_idx, error }.into()),
        };
        commit_writes(&mut self.committed, &run.reads, run.writes);
        for (key, delta) in run.deltas {
            let current = current(storage, &self.committed, &key)
                .map_err(|error| BlockError::Storage { txn_idx, error })?;
            let value = delta.apply(current.as_ref()).map_err(|e| BlockError::Delta {
                txn_idx,
                key: format!("{key:?}"),
                message: e.to_string(),
            })?;
            self.committed.insert(key, value);
        }
        self.stats.final_executions += 1;
        let flow = self.steps.on_commit(txn_idx, &receipt);
        self.outputs.push(receipt);
        Ok(flow)
    }
}

/// The value at `key` now: committed, else in `storage`.
fn current<S: Storage<EvmKey, EvmValue>>(
    storage: &S,
    committed: &Committed,
    key: &EvmKey,
) -> Result<Option<EvmValue>, StorageError> {
    match committed.get(key) {
        Some(value) => Ok(Some(value.clone())),
        None => storage.read(key).map_err(StorageError::new),
    }
}

/// Whether every read of `run` marked to be checked saw what the state now holds (an
/// account's basics; a slot's value as its account's current epoch shows it).
fn read_what_it_saw<S: Storage<EvmKey, EvmValue>>(
    storage: &S,
    committed: &Committed,
    run: &Run,
    txn_idx: usize,
) -> Result<bool, BlockError<EvmError>> {
    let storage_error = |error| BlockError::Storage { txn_idx, error };
    for read in run.reads.iter().filter(|read| read.check) {
        let now = match read.key {
            EvmKey::Account(address) => {
                match current(storage, committed, &EvmKey::Account(address)).map_err(storage_error)? {
                    Some(EvmValue::Account(AccountState { info, .. })) => Seen::Account(info, 0),
                    _ => Seen::Account(None, 0),
                }
            }
            EvmKey::Storage(address, _) => {
                let epoch =
                    match current(storage, committed, &EvmKey::Account(address)).map_err(storage_error)? {
                        Some(EvmValue::Account(account)) => account.storage_epoch,
                        _ => 0,
                    };
                match current(storage, committed, &read.key).map_err(storage_error)? {
                    Some(EvmValue::Storage(slot)) if slot.epoch == epoch => Seen::Slot(slot.value),
                    _ => Seen::Slot(U256::ZERO),
                }
            }
        };
        let same = match (&read.seen, &now) {
            (Seen::Account(a, _), Seen::Account(b, _)) => a == b,
            (seen, now) => seen == now,
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Commits a transaction's `writes`, each storage epoch moved from the one its
/// execution saw (in `reads`) to the account's true one.
fn commit_writes(committed: &mut Committed, reads: &[Read], writes: Vec<(EvmKey, EvmValue)>) {
    // Each written account's epoch now, less the one the execution saw: taken before any of
    // the writes lands. (Most writes are to accounts of epoch 0 seen as 0: no shift.)
    let mut shifts: AddressMap<i64> = AddressMap::default();
    for (key, _) in &writes {
        let address = match key {
            EvmKey::Account(address) | EvmKey::Storage(address, _) => *address,
        };
        if shifts.contains_key(&address) {
            continue;
        }
        // An account no transaction below wrote is as before the block, whose epoch the
        // execution saw: no shift, and no read of the database.
        let seen = seen_epoch(reads, address).unwrap_or(0);
        let shift = match committed.get(&EvmKey::Account(address)) {
            Some(EvmValue::Account(account)) => i64::from(account.storage_epoch) - i64::from(seen),
            _ => 0,
        };
        shifts.insert(address, shift);
    }
    let rebase = |epoch: u32, shift: i64| u32::try_from(i64::from(epoch) + shift).unwrap_or(epoch);
    for (key, mut value) in writes {
        match (&key, &mut value) {
            (EvmKey::Account(address), EvmValue::Account(account)) => {
                account.storage_epoch = rebase(account.storage_epoch, shifts[address]);
            }
            (EvmKey::Storage(address, _), EvmValue::Storage(slot)) => {
                slot.epoch = rebase(slot.epoch, shifts[address]);
            }
            _ => {}
        }
        committed.insert(key, value);
    }
}

/// Where `ours` (the list the block's execution makes) and `theirs` (the given list,
/// validated as sorted) part: of all their differences, the one at the lowest block access
/// index (a wrong entry misleads the transactions above it, whose own entries then differ
/// too, but only above it), then the first account; differences without an index (an
/// account with no changes, a read) come last.
fn first_mismatch(
    ours: &[AccountChanges],
    theirs: &[AccountChanges],
    transactions: usize,
) -> Option<AccessListError> {
    let mut first: Option<(u64, Address, Difference)> = None;
    let mut note = |address: Address, difference: Difference| {
        let rank = difference.0.unwrap_or(u64::MAX);
        if first.as_ref().is_none_or(|(r, _, _)| rank < *r) {
            first = Some((rank, address, difference));
        }
    };
    let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(o), t) if t.is_none_or(|t| o.address < t.address) => {
                note(o.address, (lowest_index(o), None, "accessed by the block but not listed".into()));
                a.next();
            }
            (o, Some(t)) if o.is_none_or(|o| t.address < o.address) => {
                note(t.address, (lowest_index(t), None, "listed but not accessed by the block".into()));
                b.next();
            }
            (Some(o), Some(t)) => {
                if let Some(difference) = account_mismatch(o, t) {
                    note(o.address, difference);
                }
                a.next();
                b.next();
            }
            _ => unreachable!("both sides are covered above"),
        }
    }
    first.map(|(_, address, (index, slot, what))| AccessListError::Mismatch {
        index,
        transactions,
        address,
        slot,
        what,
    })
}

/// The lowest block access index of `account`'s changes.
fn lowest_index(account: &AccountChanges) -> Option<u64> {
    let balances = account.balance_changes.iter().map(|c| c.block_access_index);
    let nonces = account.nonce_changes.iter().map(|c| c.block_access_index);
    let codes = account.code_changes.iter().map(|c| c.block_access_index);
    let slots = account.storage_changes.iter().flat_map(|s| s.changes.iter().map(|c| c.block_access_index));
    balances.chain(nonces).chain(codes).chain(slots).map(|i| i.get()).min()
}

type Difference = (Option<u64>, Option<U256>, String);

/// Where one account's entries part (the difference at the lowest index): the index, the
/// slot, what.
fn account_mismatch(ours: &AccountChanges, theirs: &AccountChanges) -> Option<Difference> {
    let mut found: Vec<Difference> = Vec::new();
    let mut field = |name: &str, o: Vec<(u64, String)>, t: Vec<(u64, String)>| {
        if let Some((index, what)) = changes_mismatch(&o, &t) {
            found.push((Some(index), None, format!("{name} {what}")));
        }
    };
    let balances = |c: &AccountChanges| {
        c.balance_changes.iter().map(|c| (c.block_access_index.get(), c.post_balance.to_string())).collect()
    };
    let nonces = |c: &AccountChanges| {
        c.nonce_changes.iter().map(|c| (c.block_access_index.get(), c.new_nonce.to_string())).collect()
    };
    let codes = |c: &AccountChanges| {
        c.code_changes
            .iter()
            .map(|c| {
                (
                    c.block_access_index.get(),
                    format!("{} bytes {}", c.new_code.len(), alloy_primitives::keccak256(&c.new_code)),
                )
            })
            .collect()
    };
    field("balance", balances(ours), balances(theirs));
    field("nonce", nonces(ours), nonces(theirs));
    field("code", codes(ours), codes(theirs));
    let (mut a, mut b) = (ours.storage_changes.iter().peekable(), theirs.storage_changes.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(o), t) if t.is_none_or(|t| o.slot < t.slot) => {
                let index = o.changes.first().map(|c| c.block_access_index.get());
                found.push((index, Some(o.slot), "written by the block but not listed as written".into()));
                a.next();
            }
            (o, Some(t)) if o.is_none_or(|o| t.slot < o.slot) => {
                let index = t.changes.first().map(|c| c.block_access_index.get());
                found.push((index, Some(t.slot), "listed as written but not written by the block".into()));
                b.next();
            }
            (Some(o), Some(t)) => {
                let values = |c: &alloy_eip7928::SlotChanges| -> Vec<(u64, String)> {
                    c.changes
                        .iter()
                        .map(|c| (c.block_access_index.get(), format!("{:#x}", c.new_value)))
                        .collect()
                };
                if let Some((index, what)) = changes_mismatch(&values(o), &values(t)) {
                    found.push((Some(index), Some(o.slot), format!("value {what}")));
                }
                a.next();
                b.next();
            }
            _ => unreachable!("both sides are covered above"),
        }
    }
    let (o, t) = (&ours.storage_reads, &theirs.storage_reads);
    if let Some(slot) = o.iter().find(|slot| t.binary_search(slot).is_err()) {
        found.push((None, Some(*slot), "read by the block but not listed as read".into()));
    }
    if let Some(slot) = t.iter().find(|slot| o.binary_search(slot).is_err()) {
        found.push((None, Some(*slot), "listed as read but not read by the block".into()));
    }
    found.into_iter().min_by_key(|(index, _, _)| index.unwrap_or(u64::MAX))
}

/// Where two lists of (index, value) part: the index, and what each side holds there.
fn changes_mismatch(ours: &[(u64, String)], theirs: &[(u64, String)]) -> Option<(u64, String)> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (ours.get(i), theirs.get(j)) {
            (None, None) => return None,
            (Some((index, value)), t) if t.is_none_or(|(k, _)| index < k) => {
                return Some((*index, format!("changed to {value} by the block, not listed")));
            }
            (o, Some((index, value))) if o.is_none_or(|(k, _)| index < k) => {
                return Some((*index, format!("listed as {value}, not changed by the block")));
            }
            (Some((index, o)), Some((_, t))) => {
                if o != t {
                    return Some((*index, format!("{o} after the block's execution, listed as {t}")));
                }
                i += 1;
                j += 1;
            }
            _ => unreachable!("both sides are covered above"),
        }
    }
}
