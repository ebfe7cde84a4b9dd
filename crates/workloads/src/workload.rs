//! Seeded block generators.

use crate::vm::{Fee, WorkTx};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A standard workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// The Block-STM paper's peer-to-peer transfers between random accounts out of `accounts`.
    P2p {
        /// Number of accounts.
        accounts: u32,
    },
    /// Transfers between distinct pairs of accounts: no two transactions touch one location.
    Independent,
    /// Every transaction works, then increments the same counter (read-modify-write).
    HotCounter,
    /// [`Workload::HotCounter`] with the increment as a delta.
    HotCounterDelta,
    /// Transaction `i` reads what `i - 1` wrote, works with it, writes for `i + 1`.
    Chain,
    /// Peer-to-peer transfers over 10 000 accounts, each also crediting one fee account
    /// (read-modify-write).
    FeeAccount,
    /// [`Workload::FeeAccount`] with the fee credited by a delta.
    FeeAccountDelta,
}

/// The fee account of [`Workload::FeeAccount`].
pub const FEE_ACCOUNT: u32 = u32::MAX;

/// A generated block and its pre-state.
#[derive(Clone, Debug)]
pub struct Block {
    /// Pre-state: account balances.
    pub storage: HashMap<u32, u64>,
    /// The transactions.
    pub txns: Vec<WorkTx>,
}

impl Workload {
    /// The default suite, in display order.
    pub const ALL: [Workload; 11] = [
        Workload::P2p { accounts: 2 },
        Workload::P2p { accounts: 10 },
        Workload::P2p { accounts: 100 },
        Workload::P2p { accounts: 1_000 },
        Workload::P2p { accounts: 10_000 },
        Workload::Independent,
        Workload::HotCounter,
        Workload::HotCounterDelta,
        Workload::Chain,
        Workload::FeeAccount,
        Workload::FeeAccountDelta,
    ];

    /// Generates a block of `txns` transactions from `seed` (the same seed, the same block).
    pub fn generate(self, txns: usize, seed: u64) -> Block {
        let mut rng = SplitMix(seed ^ self.salt());
        let balance = 1_000_000_000;
        match self {
            Workload::P2p { accounts } => Block {
                storage: (0..accounts).map(|a| (a, balance)).collect(),
                txns: (0..txns).map(|_| transfer(&mut rng, accounts, Fee::None)).collect(),
            },
            Workload::Independent => Block {
                storage: (0..2 * txns as u32).map(|a| (a, balance)).collect(),
                txns: (0..txns as u32)
                    .map(|i| WorkTx::Transfer {
                        from: 2 * i,
                        to: 2 * i + 1,
                        amount: 1 + rng.below(100),
                        fee: Fee::None,
                    })
                    .collect(),
            },
            Workload::HotCounter | Workload::HotCounterDelta => Block {
                storage: HashMap::new(),
                txns: vec![WorkTx::Increment { key: 0, by_delta: self == Workload::HotCounterDelta }; txns],
            },
            Workload::Chain => Block {
                storage: HashMap::from([(0, 1)]),
                txns: (0..txns as u32).map(|i| WorkTx::Link { read: i, write: i + 1 }).collect(),
            },
            Workload::FeeAccount | Workload::FeeAccountDelta => {
                let fee = if self == Workload::FeeAccount {
                    Fee::Write(FEE_ACCOUNT)
                } else {
                    Fee::Delta(FEE_ACCOUNT)
                };
                Block {
                    storage: (0..10_000).map(|a| (a, balance)).collect(),
                    txns: (0..txns).map(|_| transfer(&mut rng, 10_000, fee)).collect(),
                }
            }
        }
    }

    fn salt(self) -> u64 {
        match self {
            Workload::P2p { accounts } => u64::from(accounts),
            Workload::Independent => 1 << 40,
            Workload::Chain => 3 << 40,
            // The delta variants draw the same blocks as the plain ones.
            Workload::HotCounter | Workload::HotCounterDelta => 2 << 40,
            Workload::FeeAccount | Workload::FeeAccountDelta => 4 << 40,
        }
    }
}

fn transfer(rng: &mut SplitMix, accounts: u32, fee: Fee) -> WorkTx {
    let from = rng.below(u64::from(accounts)) as u32;
    let to = rng.below(u64::from(accounts)) as u32;
    WorkTx::Transfer { from, to, amount: 1 + rng.below(100), fee }
}

/// splitmix64.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::P2p { accounts } => write!(f, "p2p-{accounts}"),
            Workload::Independent => f.write_str("independent"),
            Workload::HotCounter => f.write_str("hot-counter"),
            Workload::HotCounterDelta => f.write_str("hot-counter-delta"),
            Workload::Chain => f.write_str("chain"),
            Workload::FeeAccount => f.write_str("fee-account"),
            Workload::FeeAccountDelta => f.write_str("fee-account-delta"),
        }
    }
}

/// A workload name that is not one of [`Workload::ALL`]'s (or `p2p-N` with `N >= 1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWorkload(pub String);

impl fmt::Display for UnknownWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = Workload::ALL.iter().map(ToString::to_string).collect();
        write!(f, "unknown workload {:?}; known: {} (or p2p-N for N accounts)", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownWorkload {}

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Self, UnknownWorkload> {
        match s {
            "independent" => Ok(Workload::Independent),
            "hot-counter" => Ok(Workload::HotCounter),
            "hot-counter-delta" => Ok(Workload::HotCounterDelta),
            "chain" => Ok(Workload::Chain),
            "fee-account" => Ok(Workload::FeeAccount),
            "fee-account-delta" => Ok(Workload::FeeAccountDelta),
            _ => s
                .strip_prefix("p2p-")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&accounts| accounts >= 1)
                .map(|accounts| Workload::P2p { accounts })
                .ok_or_else(|| UnknownWorkload(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for w in Workload::ALL {
            assert_eq!(w.to_string().parse::<Workload>(), Ok(w));
        }
        assert!("p2p-0".parse::<Workload>().is_err());
        let err = "nope".parse::<Workload>().unwrap_err().to_string();
        assert!(err.contains("unknown workload \"nope\"") && err.contains("p2p-10000"), "{err}");
    }

    #[test]
    fn generation_is_deterministic() {
        for w in Workload::ALL {
            assert_eq!(w.generate(50, 7).txns, w.generate(50, 7).txns);
        }
        assert_ne!(
            Workload::P2p { accounts: 100 }.generate(50, 7).txns,
            Workload::P2p { accounts: 100 }.generate(50, 8).txns
        );
    }
}
