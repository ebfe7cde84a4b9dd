//! The rules a block is checked against before it executes (header against parent, blob
//! fields), the fork schedule of a test network, and how a rejection is reported.

use super::model::TestHeader;
use crate::SpecId;
use crate::vm::EvmTx;
use alloy_consensus::proofs::{
    calculate_ommers_root, calculate_transaction_root, calculate_withdrawals_root,
};
use alloy_consensus::{Block, TxEnvelope};
use alloy_eips::eip1559::{BaseFeeParams, calc_next_block_base_fee};
use alloy_eips::eip4844::{
    DATA_GAS_PER_BLOB, MAX_BLOBS_PER_BLOCK_DENCUN, VERSIONED_HASH_VERSION_KZG, calc_excess_blob_gas,
};
use alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS;
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, B256, Bytes, U256, hex, keccak256};
use alloy_rlp::Decodable;
use std::fmt;

/// The EIP-4788 beacon-roots contract's code, as the EIP deploys it.
const BEACON_ROOTS_CODE: [u8; 97] = hex!(
    "3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500"
);

/// keccak-256 of the beacon-roots contract's code.
pub(crate) fn beacon_roots_code_hash() -> B256 {
    keccak256(BEACON_ROOTS_CODE)
}

/// Why a block is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A transaction breaks a rule (nonce, balance, intrinsic gas, fee cap, the block's gas).
    Transaction {
        /// The transaction.
        txn_idx: usize,
        /// The rule, in words.
        rule: String,
    },
    /// The block breaks a rule (its header against its parent or its own execution).
    Block(String),
    /// Not the block's fault: the executors disagree, or our execution failed.
    Divergence(String),
}

impl Rejection {
    pub(crate) fn is_transaction(&self) -> bool {
        matches!(self, Rejection::Transaction { .. })
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Transaction { txn_idx, rule } => write!(f, "transaction {txn_idx}: {rule}"),
            Rejection::Block(rule) => f.write_str(rule),
            Rejection::Divergence(message) => write!(f, "not the block's fault: {message}"),
        }
    }
}

/// A test network's fork schedule: one fork, or a transition at a block number or timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fork {
    /// One fork for every block.
    Fixed(SpecId),
    /// `before` below block `number`, `after` from it.
    AtBlock { before: SpecId, after: SpecId, number: u64 },
    /// `before` below `timestamp`, `after` from it.
    AtTime { before: SpecId, after: SpecId, timestamp: u64 },
    /// `spec` for every block, the DAO fork's irregular state change at block `number` (the
    /// fork changes no EVM rule).
    Dao { spec: SpecId, number: u64 },
    /// `before` until the chain's total difficulty reaches `total` (the merge's terminal total
    /// difficulty), `after` for the blocks whose parent reached it.
    AtTotalDifficulty { before: SpecId, after: SpecId, total: U256 },
}

fn spec_named(name: &str) -> Option<SpecId> {
    Some(match name {
        "Frontier" => SpecId::FRONTIER,
        "Homestead" => SpecId::HOMESTEAD,
        "EIP150" => SpecId::TANGERINE,
        "EIP158" => SpecId::SPURIOUS_DRAGON,
        "Byzantium" => SpecId::BYZANTIUM,
        // revm 43 has no Constantinople without the fix: the fixed one is Petersburg.
        "ConstantinopleFix" | "Petersburg" => SpecId::PETERSBURG,
        "Istanbul" => SpecId::ISTANBUL,
        "Berlin" => SpecId::BERLIN,
        "London" => SpecId::LONDON,
        // The glacier forks only move the difficulty bomb: London's rules for execution.
        "ArrowGlacier" | "GrayGlacier" => SpecId::LONDON,
        "Paris" | "Merge" => SpecId::MERGE,
        "Shanghai" => SpecId::SHANGHAI,
        "Cancun" => SpecId::CANCUN,
        "Prague" => SpecId::PRAGUE,
        _ => return None,
    })
}

impl Fork {
    /// The schedule of a `network` name (`Cancun`, `BerlinToLondonAt5`,
    /// `ParisToShanghaiAtTime15k`, `ArrowGlacierToParisAtDiffC0000`, `HomesteadToDaoAt5`); an
    /// error says why it is not run.
    pub(crate) fn parse(network: &str) -> Result<Self, String> {
        if let Some(spec) = spec_named(network) {
            return Ok(Fork::Fixed(spec));
        }
        let unknown = || format!("network {network}: not a fork schedule this runner knows");
        let (before, rest) = network.split_once("To").ok_or_else(unknown)?;
        let before = spec_named(before).ok_or_else(unknown)?;
        if let Some((after, time)) = rest.split_once("AtTime") {
            let after = spec_named(after).ok_or_else(unknown)?;
            let timestamp = match time.strip_suffix('k') {
                Some(thousands) => thousands.parse::<u64>().map(|t| t * 1000),
                None => time.parse(),
            }
            .map_err(|_| unknown())?;
            return Ok(Fork::AtTime { before, after, timestamp });
        }
        if let Some((after, total)) = rest.split_once("AtDiff") {
            let after = spec_named(after).ok_or_else(unknown)?;
            let total = U256::from_str_radix(total, 16).map_err(|_| unknown())?;
            return Ok(Fork::AtTotalDifficulty { before, after, total });
        }
        if let Some((after, number)) = rest.split_once("At") {
            let number = number.parse().map_err(|_| unknown())?;
            if after == "Dao" {
                return Ok(Fork::Dao { spec: before, number });
            }
            let after = spec_named(after).ok_or_else(unknown)?;
            return Ok(Fork::AtBlock { before, after, number });
        }
        Err(unknown())
    }

    /// The fork of the block `number` at `timestamp` whose parent's total difficulty (the sum
    /// of the difficulties from the genesis to the parent) is `parent_total`.
    pub(crate) fn spec_at(&self, number: u64, timestamp: u64, parent_total: U256) -> SpecId {
        match *self {
            Fork::Fixed(spec) | Fork::Dao { spec, .. } => spec,
            Fork::AtBlock { before, after, number: at } => {
                if number >= at {
                    after
                } else {
                    before
                }
            }
            Fork::AtTime { before, after, timestamp: at } => {
                if timestamp >= at {
                    after
                } else {
                    before
                }
            }
            Fork::AtTotalDifficulty { before, after, total } => {
                if parent_total >= total {
                    after
                } else {
                    before
                }
            }
        }
    }

    /// Whether the block `number` is the DAO fork's (EIP-779's irregular state change).
    pub(crate) fn is_dao_fork(&self, number: u64) -> bool {
        matches!(*self, Fork::Dao { number: at, .. } if at == number)
    }
}

/// The forks in force at one block of a test chain, as the chain specification the client API
/// takes: every fork up to the block's in force from the start, the DAO fork activating at
/// this block when it is the DAO fork's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockForks {
    pub(crate) spec: SpecId,
    pub(crate) number: u64,
    pub(crate) dao: bool,
}

impl EthereumHardforks for BlockForks {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        use EthereumHardfork as F;
        let (spec, by_time) = match fork {
            F::Dao => return if self.dao { ForkCondition::Block(self.number) } else { ForkCondition::Never },
            F::Frontier => (SpecId::FRONTIER, false),
            F::Homestead => (SpecId::HOMESTEAD, false),
            F::Tangerine => (SpecId::TANGERINE, false),
            F::SpuriousDragon => (SpecId::SPURIOUS_DRAGON, false),
            F::Byzantium => (SpecId::BYZANTIUM, false),
            F::Constantinople | F::Petersburg => (SpecId::PETERSBURG, false),
            F::Istanbul | F::MuirGlacier => (SpecId::ISTANBUL, false),
            F::Berlin => (SpecId::BERLIN, false),
            F::London | F::ArrowGlacier | F::GrayGlacier => (SpecId::LONDON, false),
            F::Paris => (SpecId::MERGE, false),
            F::Shanghai => (SpecId::SHANGHAI, true),
            F::Cancun => (SpecId::CANCUN, true),
            F::Prague => (SpecId::PRAGUE, true),
            F::Osaka => (SpecId::OSAKA, true),
            _ => return ForkCondition::Never,
        };
        match (self.spec.is_enabled_in(spec), by_time) {
            (false, _) => ForkCondition::Never,
            (true, false) => ForkCondition::Block(0),
            (true, true) => ForkCondition::Timestamp(0),
        }
    }
}

impl EthExecutorSpec for BlockForks {
    fn deposit_contract_address(&self) -> Option<Address> {
        Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS)
    }
}

/// The header-versus-parent rules that take a few lines (number, timestamp, gas limit, base
/// fee, excess blob gas, a difficulty on the right side of the merge, ommers after the merge).
/// The others (the difficulty formula before the merge, seals, ommers' own validity) are a
/// node's consensus layer's.
pub(crate) fn check_header(
    header: &TestHeader,
    parent: &TestHeader,
    ommers: &[TestHeader],
    spec: SpecId,
) -> Result<(), Rejection> {
    let reject = |rule: String| Err(Rejection::Block(rule));
    if header.number != parent.number + 1 {
        return reject(format!("block number {} after parent {}", header.number, parent.number));
    }
    if header.timestamp <= parent.timestamp {
        return reject(format!("timestamp {} not after the parent's {}", header.timestamp, parent.timestamp));
    }
    // The gas limit moves by less than 1/1024 of the parent's, and stays at least 5000. The
    // first London block's parent counts twice (EIP-1559's elasticity multiplier).
    let parent_limit = if spec.is_enabled_in(SpecId::LONDON) && parent.base_fee_per_gas.is_none() {
        parent.gas_limit * BaseFeeParams::ethereum().elasticity_multiplier as u64
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / 1024;
    if header.gas_limit.abs_diff(parent_limit) >= bound || header.gas_limit < 5000 {
        return reject(format!(
            "gas limit {} out of bounds after the parent's {}",
            header.gas_limit, parent.gas_limit
        ));
    }
    if header.gas_limit > i64::MAX as u64 {
        return reject(format!("gas limit {} above 2^63 - 1", header.gas_limit));
    }
    if header.extra_data.len() > 32 {
        return reject(format!("{} bytes of extra data, above 32", header.extra_data.len()));
    }
    if spec.is_enabled_in(SpecId::MERGE) && !header.difficulty.is_zero() {
        return reject(format!("difficulty {} after the merge", header.difficulty));
    }
    if !spec.is_enabled_in(SpecId::MERGE) && header.difficulty.is_zero() {
        return reject("difficulty 0 before the merge".into());
    }
    if header.gas_used > header.gas_limit {
        return reject(format!("gas used {} above the gas limit {}", header.gas_used, header.gas_limit));
    }
    if spec.is_enabled_in(SpecId::LONDON) {
        let Some(base_fee) = header.base_fee_per_gas else {
            return reject("no base fee from London on".into());
        };
        // The first London block's parent has no base fee: the initial one, 10^9.
        let expected = match parent.base_fee_per_gas {
            Some(parent_fee) => calc_next_block_base_fee(
                parent.gas_used,
                parent.gas_limit,
                parent_fee,
                BaseFeeParams::ethereum(),
            ),
            None => 1_000_000_000,
        };
        if base_fee != expected {
            return reject(format!("base fee {base_fee}, the parent gives {expected}"));
        }
    } else if let Some(base_fee) = header.base_fee_per_gas {
        return reject(format!("base fee {base_fee} before London"));
    }
    if spec.is_enabled_in(SpecId::MERGE) && !ommers.is_empty() {
        return reject(format!("{} ommers after the merge", ommers.len()));
    }
    if spec.is_enabled_in(SpecId::CANCUN) {
        let expected =
            calc_excess_blob_gas(parent.excess_blob_gas.unwrap_or(0), parent.blob_gas_used.unwrap_or(0));
        if header.excess_blob_gas != Some(expected) {
            return reject(format!(
                "excess blob gas {:?}, the parent gives {expected}",
                header.excess_blob_gas
            ));
        }
    }
    Ok(())
}

/// The block, decoded from its RLP.
pub(crate) fn decode_body(rlp: &Bytes) -> Result<Block<TxEnvelope>, Rejection> {
    Block::<TxEnvelope>::decode(&mut rlp.as_ref())
        .map_err(|e| Rejection::Block(format!("the block's RLP does not decode: {e}")))
}

/// The DAO fork's rule for the extra data (geth's `VerifyDAOHeaderExtraData`): the fork block
/// and the nine after it, and the ommers of those numbers, carry `dao-hard-fork`.
pub(crate) fn check_dao_extra_data(
    header: &TestHeader,
    ommers: &[TestHeader],
    fork: &Fork,
) -> Result<(), Rejection> {
    const DAO_EXTRA_DATA: &[u8] = b"dao-hard-fork";
    let Fork::Dao { number: dao, .. } = *fork else { return Ok(()) };
    for (what, h) in std::iter::once(("the block", header)).chain(ommers.iter().map(|o| ("an ommer", o))) {
        if (dao..dao + 10).contains(&h.number) && h.extra_data.as_ref() != DAO_EXTRA_DATA {
            return Err(Rejection::Block(format!(
                "{what} at number {} has extra data {}, not the DAO fork's `dao-hard-fork`",
                h.number, h.extra_data
            )));
        }
    }
    Ok(())
}

/// The block's body against its header: the transactions root, the ommers hash, and the
/// withdrawals (present from Shanghai on, with their root). Checked after the transactions ran,
/// so that a block whose transaction is invalid is rejected for that transaction.
pub(crate) fn check_body(
    header: &TestHeader,
    block: &Block<TxEnvelope>,
    spec: SpecId,
) -> Result<(), Rejection> {
    let root = calculate_transaction_root(&block.body.transactions);
    if root != header.transactions_trie {
        return Err(Rejection::Block(format!(
            "transactions root {root}, the header says {}",
            header.transactions_trie
        )));
    }
    let ommers = calculate_ommers_root(&block.body.ommers);
    if ommers != header.uncle_hash {
        return Err(Rejection::Block(format!("ommers hash {ommers}, the header says {}", header.uncle_hash)));
    }
    match (&block.body.withdrawals, spec.is_enabled_in(SpecId::SHANGHAI)) {
        (Some(withdrawals), true) => {
            let root = calculate_withdrawals_root(withdrawals);
            if Some(root) != header.withdrawals_root {
                return Err(Rejection::Block(format!(
                    "withdrawals root {root}, the header says {:?}",
                    header.withdrawals_root
                )));
            }
        }
        (None, true) => return Err(Rejection::Block("no withdrawals from Shanghai on".into())),
        (Some(_), false) => return Err(Rejection::Block("withdrawals before Shanghai".into())),
        (None, false) => {}
    }
    Ok(())
}

/// The block's blobs: each transaction's within Cancun's limit and of the KZG version (the
/// transaction's own rules, checked first), then at most [`MAX_BLOBS_PER_BLOCK_DENCUN`] in the
/// block, and the header's `blobGasUsed` equal to what its transactions carry.
pub(crate) fn check_blobs(header: &TestHeader, txns: &[EvmTx], spec: SpecId) -> Result<(), Rejection> {
    if !spec.is_enabled_in(SpecId::CANCUN) {
        return Ok(());
    }
    for (txn_idx, tx) in txns.iter().enumerate() {
        let hashes = &tx.0.blob_hashes;
        let rule = if hashes.len() > MAX_BLOBS_PER_BLOCK_DENCUN {
            format!("{} blobs, above a transaction's {MAX_BLOBS_PER_BLOCK_DENCUN}", hashes.len())
        } else if let Some(hash) = hashes.iter().find(|h| h[0] != VERSIONED_HASH_VERSION_KZG) {
            format!("blob versioned hash {hash} is not of the KZG version")
        } else {
            continue;
        };
        return Err(Rejection::Transaction { txn_idx, rule });
    }
    let blobs: usize = txns.iter().map(|tx| tx.0.blob_hashes.len()).sum();
    if blobs > MAX_BLOBS_PER_BLOCK_DENCUN {
        return Err(Rejection::Block(format!(
            "{blobs} blobs, above the block's {MAX_BLOBS_PER_BLOCK_DENCUN}"
        )));
    }
    let used = blobs as u64 * DATA_GAS_PER_BLOB;
    if header.blob_gas_used != Some(used) {
        return Err(Rejection::Block(format!(
            "blob gas used {:?}, the transactions carry {used}",
            header.blob_gas_used
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_parse_to_schedules() {
        assert_eq!(Fork::parse("Cancun"), Ok(Fork::Fixed(SpecId::CANCUN)));
        let zero = U256::ZERO;
        let at5 = Fork::parse("BerlinToLondonAt5").unwrap();
        assert_eq!((at5.spec_at(4, 0, zero), at5.spec_at(5, 0, zero)), (SpecId::BERLIN, SpecId::LONDON));
        assert!(!at5.is_dao_fork(5));
        let at15k = Fork::parse("ParisToShanghaiAtTime15k").unwrap();
        assert_eq!(
            (at15k.spec_at(9, 14_999, zero), at15k.spec_at(9, 15_000, zero)),
            (SpecId::MERGE, SpecId::SHANGHAI)
        );
        let dao = Fork::parse("HomesteadToDaoAt5").unwrap();
        assert_eq!(dao.spec_at(5, 0, zero), SpecId::HOMESTEAD);
        assert_eq!((dao.is_dao_fork(4), dao.is_dao_fork(5), dao.is_dao_fork(6)), (false, true, false));
        let merge = Fork::parse("ArrowGlacierToParisAtDiffC0000").unwrap();
        assert_eq!(
            (merge.spec_at(5, 0, U256::from(0xbffff)), merge.spec_at(6, 0, U256::from(0xc0000))),
            (SpecId::LONDON, SpecId::MERGE)
        );
        assert!(Fork::parse("Atlantis").is_err());
        assert!(Fork::parse("BerlinToLondonAtDiffXYZ").is_err());
    }
}
