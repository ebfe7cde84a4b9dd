//! The EVM state as blockstm sees it: locations, values, and the balance credit delta.
//!
//! # Locations
//!
//! An account's basics (balance, nonce, code hash) are one location, each storage slot another.
//! Code is immutable and found by its hash: code that existed before the block is served from
//! the fixture's immutable map, outside the multi-version memory; code deployed in the block
//! travels inside the deploying write of its account ([`AccountBasic::code`]).
//!
//! # Self-destruct and storage epochs
//!
//! A self-destruct (and a contract creation, which starts from empty storage) clears all of an
//! account's storage, and the slots are not known. Instead of writing each slot, every account
//! carries a storage epoch, bumped by each clear, and every slot value records the epoch it was
//! written in. A slot whose epoch is not its account's current epoch reads as zero. A
//! transaction always reads an account before its storage (the EVM loads the account it runs
//! or calls), so the epoch it compares with is part of its read set: a clear by a lower
//! transaction invalidates it through the account location.

use alloy_primitives::{Address, B256, Bytes, U256};
use blockstm_executor::Delta;
use revm::bytecode::{Bytecode, JumpTable};
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;
use std::fmt;

/// A location of the EVM state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvmKey {
    /// An account's balance, nonce and code hash.
    Account(Address),
    /// A storage slot of an account.
    Storage(Address, U256),
}

/// The value at an [`EvmKey`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvmValue {
    /// At an [`EvmKey::Account`].
    Account(AccountState),
    /// At an [`EvmKey::Storage`].
    Storage(SlotValue),
}

/// An account: whether it exists, its basics, and its storage epoch.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountState {
    /// `None` if the account does not exist (never created, self-destructed, or removed as
    /// touched and empty under EIP-161).
    pub info: Option<AccountBasic>,
    /// How many times the account's storage was cleared in this block (see the module docs).
    pub storage_epoch: u32,
}

/// An existing account's basics.
#[derive(Clone, Debug)]
pub struct AccountBasic {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// keccak-256 of the code ([`KECCAK_EMPTY`] without code).
    pub code_hash: B256,
    /// The code, when known (always for accounts with code: attached by the loader, or carried
    /// by the write that deployed it). Not compared: the hash stands for it.
    pub code: Option<Bytecode>,
}

impl PartialEq for AccountBasic {
    fn eq(&self, other: &Self) -> bool {
        self.balance == other.balance && self.nonce == other.nonce && self.code_hash == other.code_hash
    }
}

impl Eq for AccountBasic {}

impl AccountBasic {
    /// An account with `balance` and nothing else.
    pub fn with_balance(balance: U256) -> Self {
        Self { balance, nonce: 0, code_hash: KECCAK_EMPTY, code: None }
    }

    /// Empty in the sense of EIP-161: no balance, no nonce, no code.
    pub fn is_empty(&self) -> bool {
        is_empty(self.balance, self.nonce, self.code_hash)
    }

    /// Whether `info` has these basics: `self == AccountBasic::from_revm(info)`, without
    /// cloning the code.
    pub(crate) fn same_as_revm(&self, info: &AccountInfo) -> bool {
        self.balance == info.balance && self.nonce == info.nonce && self.code_hash == info.code_hash
    }

    /// `AccountBasic::from_revm(info).is_empty()`, without cloning the code.
    pub(crate) fn revm_is_empty(info: &AccountInfo) -> bool {
        is_empty(info.balance, info.nonce, info.code_hash)
    }

    /// revm's account info. Built field by field: `AccountInfo::default()` clones revm's one
    /// process-wide empty-code `Arc`, whose count both cores would then write in every
    /// transaction (a shared cache line); an account without code gets this thread's
    /// [`empty_code`] instead.
    pub(crate) fn to_revm(&self) -> AccountInfo {
        let code = match &self.code {
            Some(code) => code.clone(),
            None if self.code_hash == KECCAK_EMPTY => empty_code(),
            None => {
                return AccountInfo::new(self.balance, self.nonce, self.code_hash, empty_code())
                    .without_code();
            }
        };
        AccountInfo::new(self.balance, self.nonce, self.code_hash, code)
    }

    pub(crate) fn from_revm(info: &AccountInfo) -> Self {
        let code = if info.code_hash == KECCAK_EMPTY { None } else { info.code.clone() };
        Self { balance: info.balance, nonce: info.nonce, code_hash: info.code_hash, code }
    }

    /// [`from_revm`](Self::from_revm) of an `info` no longer needed: its code moved, not
    /// cloned (a clone writes the code's shared reference count, a line other cores read).
    pub(crate) fn from_revm_owned(info: AccountInfo) -> Self {
        let code = if info.code_hash == KECCAK_EMPTY { None } else { info.code };
        Self { balance: info.balance, nonce: info.nonce, code_hash: info.code_hash, code }
    }
}

thread_local! {
    /// This thread's copy of revm's empty code (see [`empty_code`]).
    static EMPTY_CODE: Bytecode = {
        // SAFETY: the padded bytes, original length and jump table of revm's own empty code
        // (`Bytecode::new()`): one STOP byte behind zero bytes of code, an empty jump table.
        unsafe { Bytecode::new_analyzed(Bytes::from_static(&[0x00]), 0, JumpTable::default()) }
    };
}

/// The empty code, equal to revm's `Bytecode::new()` but one allocation per thread: cloning
/// revm's process-wide one writes its reference count from every core. (revm's
/// `Bytecode::is_default`, which compares pointers, is false for this copy; revm uses it only
/// as a shortcut with an exact fallback.)
pub(crate) fn empty_code() -> Bytecode {
    EMPTY_CODE.with(Clone::clone)
}

fn is_empty(balance: U256, nonce: u64, code_hash: B256) -> bool {
    balance.is_zero() && nonce == 0 && code_hash == KECCAK_EMPTY
}

/// A storage slot's value and the storage epoch it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlotValue {
    /// The value.
    pub value: U256,
    /// The account's storage epoch when the value was written (0 for the pre-state).
    pub epoch: u32,
}

/// Credits a fee to an account without reading it: how every transaction pays the block's
/// beneficiary, so the beneficiary is not a point of conflict (a transaction that reads the
/// beneficiary still sees the exact balance: the executor resolves the credits below it).
///
/// Applied as the EVM applies a fee: the account is created if missing; under EIP-161
/// (`clear_empty`) an account left empty by a zero credit is removed, as a touched empty account
/// is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceCredit {
    /// Wei to add.
    pub amount: U256,
    /// Whether EIP-161 (Spurious Dragon) state clearing applies.
    pub clear_empty: bool,
}

/// Why a [`BalanceCredit`] could not be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreditError {
    /// The balance would exceed 2^256 - 1.
    Overflow,
    /// The location holds a storage slot, not an account (a bug in the VM).
    NotAnAccount,
}

impl fmt::Display for CreditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreditError::Overflow => f.write_str("balance overflow"),
            CreditError::NotAnAccount => f.write_str("balance credit applied to a storage slot"),
        }
    }
}

impl std::error::Error for CreditError {}

impl Delta<EvmValue> for BalanceCredit {
    type Error = CreditError;

    fn apply(&self, base: Option<&EvmValue>) -> Result<EvmValue, CreditError> {
        let account = match base {
            None => AccountState::default(),
            Some(EvmValue::Account(account)) => account.clone(),
            Some(EvmValue::Storage(_)) => return Err(CreditError::NotAnAccount),
        };
        let mut info = account.info.unwrap_or_else(|| AccountBasic::with_balance(U256::ZERO));
        info.balance = info.balance.checked_add(self.amount).ok_or(CreditError::Overflow)?;
        let info = if self.clear_empty && info.is_empty() { None } else { Some(info) };
        Ok(EvmValue::Account(AccountState { info, storage_epoch: account.storage_epoch }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(balance: u64) -> EvmValue {
        EvmValue::Account(AccountState {
            info: Some(AccountBasic::with_balance(U256::from(balance))),
            storage_epoch: 3,
        })
    }

    #[test]
    fn credit_creates_adds_and_clears_like_the_evm() {
        let credit = |amount: u64, clear_empty| BalanceCredit { amount: U256::from(amount), clear_empty };
        assert_eq!(credit(5, true).apply(None), Ok(account(5)).map(|v| with_epoch(v, 0)));
        assert_eq!(credit(5, true).apply(Some(&account(7))), Ok(account(12)));
        // A zero credit to a missing or empty account: removed under EIP-161, created before.
        let gone = EvmValue::Account(AccountState { info: None, storage_epoch: 0 });
        assert_eq!(credit(0, true).apply(None), Ok(gone));
        assert_eq!(credit(0, false).apply(None), Ok(with_epoch(account(0), 0)));
        let gone = EvmValue::Account(AccountState { info: None, storage_epoch: 3 });
        assert_eq!(credit(0, true).apply(Some(&account(0))), Ok(gone));
        let full = EvmValue::Account(AccountState {
            info: Some(AccountBasic::with_balance(U256::MAX)),
            storage_epoch: 0,
        });
        assert_eq!(credit(1, true).apply(Some(&full)), Err(CreditError::Overflow));
        let slot = EvmValue::Storage(SlotValue::default());
        assert_eq!(credit(1, true).apply(Some(&slot)), Err(CreditError::NotAnAccount));
    }

    fn with_epoch(value: EvmValue, epoch: u32) -> EvmValue {
        match value {
            EvmValue::Account(account) => EvmValue::Account(AccountState { storage_epoch: epoch, ..account }),
            other => other,
        }
    }
}
