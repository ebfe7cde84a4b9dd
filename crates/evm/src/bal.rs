//! Block-level access lists (EIP-7928) from a block's execution.
//!
//! A block's access list names every account and slot the block touched, with the value each
//! change left at its block access index: 0 for the changes before the transactions (system
//! calls), `i + 1` for transaction `i`, `n + 1` for those after the `n` transactions
//! (withdrawals, rewards, request system calls). Slots only read are listed without an index,
//! changes that leave a value as it was are left out, and everything is sorted.
//!
//! The list is built as revm's sequential builder (`State::with_bal_builder`) builds it, with
//! its own types (`revm::state::bal::Bal`): each step hands over the state revm's journal
//! committed. The transactions' entries come from their committed executions, whatever the
//! executor that ran them: the parallel executor's committed incarnation of a transaction read
//! exactly what a sequential run reads before it, so its journal state is the sequential one.
//! Each execution makes its entries where it runs ([`TxAccesses`]); the commit appends them in
//! block order, with the fee where the transaction did not load the beneficiary.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::{StorageKey, StorageValue};
use revm::state::bal::{Bal, BlockAccessIndex};
use revm::state::{Account, AccountInfo, EvmState, TransactionId};

/// The block-level access list: alloy's type, its RLP and its hash; and where two lists part.
pub use alloy_eip7928::{BalDiff, BlockAccessList};

/// The keccak-256 of `list`'s RLP: the header's `block_access_list_hash`.
pub fn block_access_list_hash(list: &BlockAccessList) -> alloy_primitives::B256 {
    alloy_eip7928::compute_block_access_list_hash(list)
}

/// `list`'s RLP encoding.
pub fn block_access_list_rlp(list: &BlockAccessList) -> Vec<u8> {
    let mut out = Vec::new();
    alloy_rlp::encode_list(list, &mut out);
    out
}

/// One transaction's entries of the block-level access list, made on the thread that executed
/// it, so that the journal's state is dropped there and the commit only appends: each account
/// the transaction's journal loaded, with the fields it changed, and its slots, each with the
/// value written or none (only read).
///
/// An entry at a new index depends only on the value when the transaction began and when it
/// ended: revm's builder (`AccountBal::update`) appends a value where it differs from the last
/// one listed, which is the value the transaction began with. So the entries made apart, then
/// appended in block order, are the builder's. The one that depends on the order is the fee's:
/// [`EvmVm`](crate::EvmVm) credits it to the beneficiary as a delta after the transaction.
/// When the transaction loaded the beneficiary, the fee is added to the journal's account
/// here, as revm's handler adds it; when not, the commit credits it to the balance the
/// transactions before left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxAccesses {
    accounts: Vec<AccountEntries>,
    /// Every account's slots, in the order of `accounts`.
    slots: Vec<(StorageKey, Option<StorageValue>)>,
    /// The beneficiary's balance after the transaction and its fee, if the transaction
    /// loaded the beneficiary.
    beneficiary_balance: Option<U256>,
    fee: U256,
}

/// An account's entries at one index: each field the transaction changed, and how many of
/// the transaction's slots are the account's.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AccountEntries {
    address: Address,
    nonce: Option<u64>,
    balance: Option<U256>,
    code: Option<(B256, Bytecode)>,
    slots: usize,
}

impl TxAccesses {
    /// The entries of a transaction from its journal's final `state` and the `fee` it pays
    /// `beneficiary`, as `AccountBal::update` makes them.
    pub(crate) fn record(mut state: EvmState, beneficiary: Address, fee: U256) -> Self {
        let mut accounts = Vec::with_capacity(state.len());
        let mut slots = Vec::new();
        let mut beneficiary_balance = None;
        for (&address, account) in state.iter_mut() {
            if address == beneficiary {
                account.info.balance = account.info.balance.saturating_add(fee);
                let gone = account.is_selfdestructed();
                beneficiary_balance = Some(if gone { U256::ZERO } else { account.info.balance });
            }
            // Taken: the state is dropped after this.
            let original = std::mem::take(account.original_info_mut());
            // A self-destruct leaves the account empty and every slot it loaded zero.
            let destroyed = account.is_selfdestructed_locally();
            let present = if destroyed { AccountInfo::default() } else { std::mem::take(&mut account.info) };
            let before = slots.len();
            for (&slot, value) in &account.storage {
                let after = if destroyed { StorageValue::ZERO } else { value.present_value };
                slots.push((slot, (after != value.original_value).then_some(after)));
            }
            accounts.push(AccountEntries {
                address,
                nonce: (present.nonce != original.nonce).then_some(present.nonce),
                balance: (present.balance != original.balance).then_some(present.balance),
                code: (present.code_hash != original.code_hash)
                    .then(|| (present.code_hash, present.code.unwrap_or_default())),
                slots: slots.len() - before,
            });
        }
        Self { accounts, slots, beneficiary_balance, fee }
    }
}

/// Builds a block's access list step by step, in block access index order.
#[derive(Clone, Debug)]
pub(crate) struct BalBuilder {
    bal: Bal,
    beneficiary: Address,
    /// The beneficiary's balance after the last step (what the next transaction's fee is
    /// credited to when the transaction did not load it).
    beneficiary_balance: U256,
}

impl BalBuilder {
    /// A list whose pre-execution entries (index 0) are `pre`, for a block whose fees go to
    /// `beneficiary`, which holds `beneficiary_balance` before the transactions.
    pub(crate) fn new(pre: Bal, beneficiary: Address, beneficiary_balance: U256) -> Self {
        Self { bal: pre, beneficiary, beneficiary_balance }
    }

    /// Transaction `txn_idx`'s entries, made where it executed ([`TxAccesses`]), appended.
    pub(crate) fn transaction(&mut self, txn_idx: usize, accesses: &TxAccesses) {
        let index = BlockAccessIndex::new(txn_idx as u64 + 1);
        let mut slots = accesses.slots.iter();
        for made in &accesses.accounts {
            let listed = self.bal.accounts.entry(made.address).or_default();
            let info = &mut listed.account_info;
            if let Some(nonce) = made.nonce {
                info.nonce.writes.push((index, nonce));
            }
            if let Some(balance) = made.balance {
                info.balance.writes.push((index, balance));
            }
            if let Some(code) = &made.code {
                info.code.writes.push((index, code.clone()));
            }
            for (slot, written) in slots.by_ref().take(made.slots) {
                let writes = listed.storage.storage.entry(*slot).or_default();
                if let Some(value) = written {
                    writes.writes.push((index, *value));
                }
            }
        }
        match accesses.beneficiary_balance {
            Some(balance) => self.beneficiary_balance = balance,
            None => {
                // As revm's `reward_beneficiary`: the account loaded as the transactions before
                // left it and credited (by zero, too: it is then only read).
                let credited = self.beneficiary_balance.saturating_add(accesses.fee);
                let listed = self.bal.accounts.entry(self.beneficiary).or_default();
                listed.account_info.balance.update(index, &self.beneficiary_balance, credited);
                self.beneficiary_balance = credited;
            }
        }
    }

    /// A balance credited after the transactions (index `n + 1` of a block of `n`), to an
    /// account holding `before`: as `DatabaseCommitExt::increment_balances` commits it.
    pub(crate) fn post_credit(
        &mut self,
        index: u64,
        address: Address,
        before: Option<AccountInfo>,
        amount: U256,
    ) {
        let mut account = match before {
            Some(info) => Account::from(info),
            None => Account::new_not_existing(TransactionId::ZERO),
        };
        account.info.balance = account.info.balance.saturating_add(amount);
        account.mark_touch();
        self.bal.update_account(BlockAccessIndex::new(index), address, &account);
    }

    /// Entries revm's own builder recorded (system calls at one index), after those so far.
    pub(crate) fn extend(&mut self, built: Bal) {
        for (address, account) in built.accounts {
            let entry = self.bal.accounts.entry(address).or_default();
            entry.account_info.extend(account.account_info);
            entry.storage.extend(account.storage);
        }
    }

    /// The list, sorted as EIP-7928 orders it.
    pub(crate) fn finish(self) -> BlockAccessList {
        self.bal.into_alloy_bal()
    }
}
