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
//! committed. The transactions' states come from their committed executions, whatever the
//! executor that ran them: the parallel executor's committed incarnation of a transaction read
//! exactly what a sequential run reads before it, so its journal state is the sequential one.
//! The one difference is the fee: [`EvmVm`](crate::EvmVm) credits it to the beneficiary as a
//! delta after the transaction rather than in its journal, so [`BalBuilder`] credits it here,
//! in block order, as revm's handler does at the end of each transaction.

use crate::vm::TxAccesses;
use alloy_primitives::{Address, U256};
use revm::state::bal::{Bal, BlockAccessIndex};
use revm::state::{Account, AccountInfo, TransactionId};

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

/// Builds a block's access list step by step, in block access index order.
#[derive(Debug)]
pub(crate) struct BalBuilder {
    bal: Bal,
    beneficiary: Address,
    /// The beneficiary's account after the last step (what the next transaction's fee is
    /// credited to when the transaction did not load it).
    beneficiary_info: AccountInfo,
}

impl BalBuilder {
    /// A list whose pre-execution entries (index 0) are `pre`, for a block whose fees go to
    /// `beneficiary`, which holds `beneficiary_info` before the transactions.
    pub(crate) fn new(pre: Bal, beneficiary: Address, beneficiary_info: AccountInfo) -> Self {
        Self { bal: pre, beneficiary, beneficiary_info }
    }

    /// Transaction `txn_idx`'s entries, from what its committed execution accessed.
    pub(crate) fn transaction(&mut self, txn_idx: usize, accesses: &TxAccesses) {
        let index = BlockAccessIndex::new(txn_idx as u64 + 1);
        let mut credited = false;
        for (&address, account) in &accesses.state {
            if address != self.beneficiary {
                self.bal.update_account(index, address, account);
                continue;
            }
            // The transaction loaded the beneficiary: its fee lands on the journal's account.
            let mut account = account.clone();
            account.info.balance = account.info.balance.saturating_add(accesses.fee);
            self.bal.update_account(index, address, &account);
            self.beneficiary_info =
                if account.is_selfdestructed() { AccountInfo::default() } else { account.info };
            credited = true;
        }
        if !credited {
            // As revm's `reward_beneficiary`: the account loaded as the transactions before left
            // it, credited (by zero, too: it is then only read).
            let mut account = Account::from(self.beneficiary_info.clone());
            account.info.balance = account.info.balance.saturating_add(accesses.fee);
            account.mark_touch();
            self.bal.update_account(index, self.beneficiary, &account);
            self.beneficiary_info = account.info;
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
