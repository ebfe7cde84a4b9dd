//! Synthetic EVM blocks of about a gigagas each: native transfers, ERC-20 transfers and AMM
//! swaps, on the Solidity contracts in `crates/evm/contracts` (compiled by solcjs, see
//! `scripts/contracts/compile.js`).
//!
//! The contracts' runtime code is placed in the pre-state and their storage filled directly
//! (balances, allowances, pool reserves), at the slots the compiler's storage layout gives
//! (printed by the compile script, written down in the sources). A wrong slot makes the
//! transactions revert, which the tests check never happens.
//!
//! Every transaction has its own sender, so no nonce chain orders them: native and ERC-20
//! transfers are independent (each touches its sender, its own recipient and, for ERC-20, two
//! balance slots), and only the fee credit to the beneficiary is shared (a commutative delta).
//! Swaps on one pool are a chain (its reserves and its token balances), so the AMM block's
//! parallelism is about its number of pools.

use crate::chain::{BlockHeader, EthBlock, PreState};
use crate::state::{AccountBasic, AccountState, EvmKey, EvmValue, SlotValue};
use crate::vm::EvmTx;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use std::fmt;
use std::str::FromStr;

/// The Token contract's runtime code (`contracts/Token.sol`), hex.
const TOKEN_CODE: &str = include_str!("../contracts/Token.bin-runtime");
/// The Pool contract's runtime code (`contracts/Pool.sol`), hex.
const POOL_CODE: &str = include_str!("../contracts/Pool.bin-runtime");

/// Tokens the ERC-20 block transfers (round robin).
pub const ERC20_TOKENS: usize = 8;
/// Pools the AMM block swaps on (chosen at random per swap), each with its own pair of tokens.
pub const AMM_POOLS: usize = 8;
/// Base fee of the synthetic blocks, wei, and the priority fee every transaction pays.
const BASE_FEE: u64 = 1_000_000_000;
const PRIORITY_FEE: u128 = 1_000_000_000;

/// A kind of gigagas block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gigagas {
    /// Ether transfers, each from its own sender to its own new recipient (21,000 gas).
    Native,
    /// `Token.transfer` calls over [`ERC20_TOKENS`] tokens, each from its own holder to its
    /// own new recipient.
    Erc20,
    /// `Pool.swap` calls over [`AMM_POOLS`] constant-product pools, each from its own trader
    /// (who holds both tokens and approved the pool), in a random direction.
    Amm,
}

/// A name that is not a gigagas block kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownGigagas(pub String);

impl fmt::Display for UnknownGigagas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown EVM workload {:?} (expected one of: eth-native, eth-erc20, eth-amm)", self.0)
    }
}

impl std::error::Error for UnknownGigagas {}

impl FromStr for Gigagas {
    type Err = UnknownGigagas;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.name() == s).ok_or_else(|| UnknownGigagas(s.to_string()))
    }
}

impl fmt::Display for Gigagas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Gigagas {
    /// Every kind.
    pub const ALL: [Gigagas; 3] = [Gigagas::Native, Gigagas::Erc20, Gigagas::Amm];

    /// The workload name (`blockstm bench -w`).
    pub fn name(self) -> &'static str {
        match self {
            Gigagas::Native => "eth-native",
            Gigagas::Erc20 => "eth-erc20",
            Gigagas::Amm => "eth-amm",
        }
    }

    /// The gas one transaction of this kind uses (measured; the tests check the blocks come
    /// within 5 % of their target), to size a block.
    fn gas_per_txn(self) -> u64 {
        match self {
            Gigagas::Native => 21_000,
            Gigagas::Erc20 => 51_500,
            Gigagas::Amm => 69_000,
        }
    }

    /// The block of this kind using about `gas` gas (at least one transaction), generated
    /// from `seed` (the same seed, the same block).
    pub fn block(self, gas: u64, seed: u64) -> EthBlock {
        let txns = (gas / self.gas_per_txn()).max(1) as usize;
        let mut builder = Builder { pre_state: PreState::default(), seed, kind: self };
        let txns = match self {
            Gigagas::Native => (0..txns).map(|i| builder.native(i)).collect(),
            Gigagas::Erc20 => {
                let tokens: Vec<Address> =
                    (0..ERC20_TOKENS).map(|t| builder.contract("token", t, TOKEN_CODE)).collect();
                (0..txns).map(|i| builder.erc20(i, tokens[i % tokens.len()])).collect()
            }
            Gigagas::Amm => {
                let pools: Vec<[Address; 3]> = (0..AMM_POOLS).map(|p| builder.pool(p)).collect();
                (0..txns).map(|i| builder.swap(i, &pools)).collect()
            }
        };
        // Timestamp: Osaka (mainnet's, before its first blob-parameter fork).
        let gas_limit = gas.saturating_mul(2).max(30_000_000);
        let header = BlockHeader::synthetic(23_940_000, 1_765_000_000, gas_limit, BASE_FEE);
        EthBlock::new(header, txns, Vec::new(), builder.pre_state)
    }
}

/// Builds a block's pre-state and transactions.
struct Builder {
    pre_state: PreState,
    seed: u64,
    kind: Gigagas,
}

impl Builder {
    /// A distinct address for (`role`, `i`) in this block.
    fn address(&self, role: &str, i: usize) -> Address {
        Address::from_word(self.hash(role, i))
    }

    /// A pseudo-random word for (`what`, `i`), from the seed.
    fn hash(&self, what: &str, i: usize) -> B256 {
        keccak256(
            [self.kind.name().as_bytes(), what.as_bytes(), &self.seed.to_le_bytes(), &i.to_le_bytes()]
                .concat(),
        )
    }

    fn account(&mut self, address: Address, basic: AccountBasic) {
        self.pre_state.insert(
            EvmKey::Account(address),
            EvmValue::Account(AccountState { info: Some(basic), storage_epoch: 0 }),
        );
    }

    fn slot(&mut self, address: Address, slot: U256, value: U256) {
        self.pre_state
            .insert(EvmKey::Storage(address, slot), EvmValue::Storage(SlotValue { value, epoch: 0 }));
    }

    /// A new sender with one ether.
    fn sender(&mut self, i: usize) -> Address {
        let address = self.address("sender", i);
        self.account(address, AccountBasic::with_balance(U256::from(10u64).pow(U256::from(18))));
        address
    }

    /// A deployed contract with `code` (hex).
    fn contract(&mut self, role: &str, i: usize, code: &str) -> Address {
        let address = self.address(role, i);
        let bytes: Bytes = code.trim().parse().expect("the committed runtime code is hex");
        let code = Bytecode::new_raw(bytes);
        let basic =
            AccountBasic { balance: U256::ZERO, nonce: 1, code_hash: code.hash_slow(), code: Some(code) };
        self.account(address, basic);
        address
    }

    /// Sets `owner`'s balance of `token` (slot 0 of Token).
    fn token_balance(&mut self, token: Address, owner: Address, value: U256) {
        self.slot(token, mapping_slot(word(owner), U256::ZERO), value);
    }

    fn native(&mut self, i: usize) -> EvmTx {
        let from = self.sender(i);
        let to = self.address("recipient", i);
        tx(from, to, 21_000, U256::from(1 + i % 1000), Bytes::new())
    }

    fn erc20(&mut self, i: usize, token: Address) -> EvmTx {
        let from = self.sender(i);
        self.token_balance(token, from, U256::from(1_000_000u64));
        let to = self.address("recipient", i);
        let data = call("transfer(address,uint256)", &[word(to), U256::from(1 + i % 1000)]);
        tx(from, token, 100_000, U256::ZERO, data)
    }

    /// Pool `p` with its two tokens: `[pool, token0, token1]`.
    fn pool(&mut self, p: usize) -> [Address; 3] {
        let pool = self.contract("pool", p, POOL_CODE);
        let token0 = self.contract("token0", p, TOKEN_CODE);
        let token1 = self.contract("token1", p, TOKEN_CODE);
        let reserve = U256::from(10u64).pow(U256::from(24));
        self.slot(pool, U256::ZERO, word(token0));
        self.slot(pool, U256::from(1), word(token1));
        self.slot(pool, U256::from(2), reserve | (reserve << 128));
        for token in [token0, token1] {
            self.token_balance(token, pool, reserve);
        }
        [pool, token0, token1]
    }

    fn swap(&mut self, i: usize, pools: &[[Address; 3]]) -> EvmTx {
        let from = self.sender(i);
        let random = U256::from_be_bytes(self.hash("swap", i).0);
        let [pool, token0, token1] = pools[(random % U256::from(pools.len())).to::<usize>()];
        for token in [token0, token1] {
            self.token_balance(token, from, U256::from(10u64).pow(U256::from(21)));
            // allowance[from][pool] = max: slot keccak(pool . keccak(from . 1)).
            self.slot(token, mapping_slot(word(pool), mapping_slot(word(from), U256::from(1))), U256::MAX);
        }
        let zero_for_one = random.bit(200);
        let amount_in = U256::from(1_000_000u64 + (random.as_limbs()[0] % 1_000_000_000));
        let data = call(
            "swap(bool,uint256,uint256,address)",
            &[U256::from(zero_for_one), amount_in, U256::from(1), word(from)],
        );
        tx(from, pool, 200_000, U256::ZERO, data)
    }
}

/// The storage slot of `mapping[key]` for a mapping at `slot`: keccak256(key . slot).
fn mapping_slot(key: U256, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&key.to_be_bytes::<32>());
    buf[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    keccak256(buf).into()
}

/// An address as a 256-bit word (ABI and storage encoding).
fn word(address: Address) -> U256 {
    address.into_word().into()
}

/// ABI-encoded call data: the selector of `signature` and static words.
fn call(signature: &str, words: &[U256]) -> Bytes {
    let mut data = keccak256(signature)[..4].to_vec();
    for w in words {
        data.extend_from_slice(&w.to_be_bytes::<32>());
    }
    data.into()
}

/// An EIP-1559 transaction (nonce 0: every sender sends once).
fn tx(from: Address, to: Address, gas_limit: u64, value: U256, data: Bytes) -> EvmTx {
    EvmTx(TxEnv {
        tx_type: 2,
        caller: from,
        gas_limit,
        gas_price: u128::from(BASE_FEE) + PRIORITY_FEE,
        gas_priority_fee: Some(PRIORITY_FEE),
        kind: TxKind::Call(to),
        value,
        data,
        nonce: 0,
        chain_id: Some(crate::MAINNET_CHAIN_ID),
        ..TxEnv::default()
    })
}
