//! Seeded random blocks: the same seed gives the same block on every machine.

use crate::vm::{Key, Op, TestStorage, Tx, storage};

/// splitmix64: a small, fast, well-distributed seeded generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A block and its pre-state.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed that generated it (replay with [`random_case`]).
    pub seed: u64,
    /// Pre-state.
    pub storage: TestStorage,
    /// The block.
    pub txns: Vec<Tx>,
}

/// A random block for `seed`: 1 to 300 transactions (one block in twenty: 600 to 2000, running
/// to its end) over a key pool of 1 to 1000 keys (often small, and often with two hot keys
/// taking most accesses), 0 to 16 operations each, value-dependent reads and writes, and in some
/// blocks errors, panics, block-ending markers and an unreadable storage location.
///
/// Half the blocks also apply deltas, on the same keys as the reads and writes (see
/// `add_deltas`); the other half are exactly the blocks drawn before deltas existed.
pub fn random_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let keys = match rng.below(3) {
        0 => rng.range(1, 4),
        1 => rng.range(5, 32),
        _ => rng.range(33, 1000),
    } as Key;
    let hot = rng.chance(0.4);
    // One block in twenty is large (past the adaptive rule's ADAPTIVE_MIN_TXNS = 512) and runs
    // to its end (no faults, no block-ending markers), so the rule's decision is exercised.
    let large = rng.chance(0.05);
    let faults = !large && rng.chance(0.5);
    let mut storage = storage(keys);
    if rng.chance(0.1) {
        storage.failing = Some(rng.below(u64::from(keys)) as Key);
    }
    let num_txns = if large { rng.range(600, 2000) } else { rng.range(1, 300) } as usize;
    let key = |rng: &mut Rng| -> Key {
        if hot && rng.chance(0.8) {
            rng.below(2.min(u64::from(keys))) as Key
        } else {
            rng.below(u64::from(keys)) as Key
        }
    };
    let txns = (0..num_txns)
        .map(|_| {
            let ops = (0..rng.range(0, 16))
                .map(|_| match rng.below(100) {
                    0..40 => Op::Read(key(&mut rng)),
                    40..48 => Op::ReadEither(key(&mut rng), key(&mut rng)),
                    48..76 => Op::Write(key(&mut rng), rng.next_u64()),
                    76..84 => Op::WriteEither(key(&mut rng), key(&mut rng), rng.next_u64()),
                    84..94 => Op::Increment(key(&mut rng)),
                    94..96 if faults => Op::FailIf { modulus: rng.range(1, 40), panic: rng.chance(0.5) },
                    94..97 if !large => Op::EndIf { modulus: rng.range(1, 64) },
                    _ => Op::Work(rng.below(200) as u32),
                })
                .collect();
            Tx { ops, hint: None }
        })
        .collect();
    let mut case = Case { seed, storage, txns };
    add_deltas(&mut case, keys, hot);
    add_hints(&mut case);
    case
}

/// With its own generator, gives half the blocks dependency hints (`Vm::dependency_hints`):
/// each transaction with probability 0.5, mostly one of the eight below it, one in ten not
/// lower (to be ignored). Hints change the schedule, never the result.
fn add_hints(case: &mut Case) {
    let mut rng = Rng::new(case.seed ^ 0x4811_7A11_4811_7A11);
    if !rng.chance(0.5) {
        return;
    }
    for (i, tx) in case.txns.iter_mut().enumerate() {
        if !rng.chance(0.5) {
            continue;
        }
        tx.hint = if i == 0 || rng.chance(0.1) {
            Some(i + rng.below(3) as usize)
        } else {
            Some(i - 1 - rng.below(8.min(i as u64)) as usize)
        };
    }
}

/// With its own generator (so the rest of the block is as before), gives half the blocks delta
/// operations: in each transaction, with probability 0.3 to 0.9 per transaction, one to three
/// deltas inserted among its operations. In a third of those blocks amounts may be negative, so
/// deltas underflow on small or absent values and end the block with a delta error.
fn add_deltas(case: &mut Case, keys: Key, hot: bool) {
    let mut rng = Rng::new(case.seed ^ 0xD317_A5D3_17A5_D317);
    if !rng.chance(0.5) {
        return;
    }
    let density = 0.3 + 0.6 * (rng.below(4) as f64 / 3.0);
    let risky = rng.chance(1.0 / 3.0);
    let key = |rng: &mut Rng| -> Key {
        if hot && rng.chance(0.8) {
            rng.below(2.min(u64::from(keys))) as Key
        } else {
            rng.below(u64::from(keys)) as Key
        }
    };
    for tx in &mut case.txns {
        if !rng.chance(density) {
            continue;
        }
        for _ in 0..rng.range(1, 3) {
            let amount = if risky { rng.range(0, 3000) as i64 - 1000 } else { rng.range(1, 1000) as i64 };
            let op = if rng.chance(0.8) {
                Op::Delta(key(&mut rng), amount)
            } else {
                Op::DeltaEither(key(&mut rng), key(&mut rng), amount)
            };
            let at = rng.below(tx.ops.len() as u64 + 1) as usize;
            tx.ops.insert(at, op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_block() {
        let (a, b) = (random_case(42), random_case(42));
        assert_eq!(format!("{:?}", a.txns), format!("{:?}", b.txns));
        assert_ne!(format!("{:?}", a.txns), format!("{:?}", random_case(43).txns));
    }
}
