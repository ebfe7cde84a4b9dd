//! The full state of a test chain between blocks, its state root, and its comparison with an
//! expected state.

use super::model::TestAccount;
use crate::chain::PreState;
use crate::state::{AccountBasic, AccountState, EvmKey, EvmValue, SlotValue};
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};
use alloy_trie::{KECCAK_EMPTY, TrieAccount};
use revm::bytecode::Bytecode;
use revm::state::EvmState;
use std::collections::BTreeMap;

/// One account of the full state: its basics and its non-zero slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WorldAccount {
    pub(crate) balance: U256,
    pub(crate) nonce: u64,
    pub(crate) code_hash: B256,
    pub(crate) storage: BTreeMap<U256, U256>,
}

/// The accounts of `accounts` (a test's `pre` or `postState`) as the VM reads them. An error
/// names the account whose code does not decode.
pub(crate) fn from_test(accounts: &BTreeMap<Address, TestAccount>) -> Result<PreState, String> {
    let mut state = PreState::default();
    for (address, account) in accounts {
        let (code_hash, code) = if account.code.is_empty() {
            (KECCAK_EMPTY, None)
        } else {
            let code = Bytecode::new_raw_checked(account.code.clone())
                .map_err(|e| format!("pre-state account {address}: code does not decode: {e}"))?;
            (keccak256(&account.code), Some(code))
        };
        let info = AccountBasic { balance: account.balance, nonce: account.nonce, code_hash, code };
        state.insert(
            EvmKey::Account(*address),
            EvmValue::Account(AccountState { info: Some(info), storage_epoch: 0 }),
        );
        for (slot, value) in &account.storage {
            if !value.is_zero() {
                state.insert(
                    EvmKey::Storage(*address, *slot),
                    EvmValue::Storage(SlotValue { value: *value, epoch: 0 }),
                );
            }
        }
    }
    Ok(state)
}

/// The state after a block (`EthBlock::post_state`, where a slot's epoch is its account's) as
/// the next block starts from it: accounts that do not exist and zero slots dropped, every
/// storage epoch back to 0.
pub(crate) fn next_block_state(post: BTreeMap<EvmKey, EvmValue>) -> PreState {
    let mut state = PreState::default();
    for (key, value) in post {
        match value {
            EvmValue::Account(AccountState { info: Some(info), .. }) => {
                state.insert(key, EvmValue::Account(AccountState { info: Some(info), storage_epoch: 0 }));
            }
            EvmValue::Account(AccountState { info: None, .. }) => {}
            EvmValue::Storage(slot) if !slot.value.is_zero() => {
                state.insert(key, EvmValue::Storage(SlotValue { value: slot.value, epoch: 0 }));
            }
            EvmValue::Storage(_) => {}
        }
    }
    // Slots of accounts that no longer exist.
    let alive: std::collections::HashSet<Address> = state
        .keys()
        .filter_map(|key| match key {
            EvmKey::Account(address) => Some(*address),
            EvmKey::Storage(..) => None,
        })
        .collect();
    state.retain(|key, _| match key {
        EvmKey::Storage(address, _) => alive.contains(address),
        EvmKey::Account(_) => true,
    });
    state
}

/// The state by account, sorted: what the state root and the post-state comparison read.
pub(crate) fn accounts(state: &PreState) -> BTreeMap<Address, WorldAccount> {
    let mut out: BTreeMap<Address, WorldAccount> = BTreeMap::new();
    for (key, value) in state {
        if let (EvmKey::Account(address), EvmValue::Account(AccountState { info: Some(info), .. })) =
            (key, value)
        {
            out.insert(
                *address,
                WorldAccount {
                    balance: info.balance,
                    nonce: info.nonce,
                    code_hash: info.code_hash,
                    storage: BTreeMap::new(),
                },
            );
        }
    }
    for (key, value) in state {
        if let (EvmKey::Storage(address, slot), EvmValue::Storage(slot_value)) = (key, value)
            && !slot_value.value.is_zero()
            && let Some(account) = out.get_mut(address)
        {
            account.storage.insert(*slot, slot_value.value);
        }
    }
    out
}

/// The Merkle-Patricia root of the state (alloy-trie, as reth computes it).
pub(crate) fn state_root(accounts: &BTreeMap<Address, WorldAccount>) -> B256 {
    state_root_unhashed(accounts.iter().map(|(address, account)| {
        let storage_root =
            storage_root_unhashed(account.storage.iter().map(|(slot, value)| (B256::from(*slot), *value)));
        (*address, TrieAccount::new(account.nonce, account.balance, storage_root, account.code_hash))
    }))
}

/// The first difference between `actual` and `expected`, in words.
pub(crate) fn first_difference(
    actual: &BTreeMap<Address, WorldAccount>,
    expected: &BTreeMap<Address, WorldAccount>,
) -> Option<String> {
    for (address, want) in expected {
        let Some(got) = actual.get(address) else {
            return Some(format!("account {address} is missing"));
        };
        if got.balance != want.balance {
            return Some(format!("account {address}: balance {} expected {}", got.balance, want.balance));
        }
        if got.nonce != want.nonce {
            return Some(format!("account {address}: nonce {} expected {}", got.nonce, want.nonce));
        }
        if got.code_hash != want.code_hash {
            return Some(format!(
                "account {address}: code hash {} expected {}",
                got.code_hash, want.code_hash
            ));
        }
        if got.storage != want.storage {
            let slot = want
                .storage
                .keys()
                .chain(got.storage.keys())
                .find(|slot| got.storage.get(slot) != want.storage.get(slot))
                .copied()
                .unwrap_or_default();
            return Some(format!(
                "account {address}: slot {slot:#x} holds {:?} expected {:?}",
                got.storage.get(&slot),
                want.storage.get(&slot)
            ));
        }
    }
    actual
        .keys()
        .find(|address| !expected.contains_key(*address))
        .map(|address| format!("unexpected account {address}"))
}

/// `state` with a block's `changes` (as the client API returns them) applied: a self-destructed
/// account removed with its storage, a created one's old storage dropped, changed slots set.
pub(crate) fn apply_evm_state(state: &PreState, changes: &EvmState) -> PreState {
    let mut next = state.clone();
    let wiped: std::collections::HashSet<Address> = changes
        .iter()
        .filter(|(_, account)| account.is_selfdestructed() || account.is_created())
        .map(|(address, _)| *address)
        .collect();
    next.retain(|key, _| !matches!(key, EvmKey::Storage(address, _) if wiped.contains(address)));
    for (address, account) in changes {
        if account.is_selfdestructed() {
            next.remove(&EvmKey::Account(*address));
            continue;
        }
        let info = AccountBasic::from_revm(&account.info);
        next.insert(
            EvmKey::Account(*address),
            EvmValue::Account(AccountState { info: Some(info), storage_epoch: 0 }),
        );
        for (slot, value) in &account.storage {
            let key = EvmKey::Storage(*address, *slot);
            if value.present_value.is_zero() {
                next.remove(&key);
            } else {
                next.insert(key, EvmValue::Storage(SlotValue { value: value.present_value, epoch: 0 }));
            }
        }
    }
    next
}
