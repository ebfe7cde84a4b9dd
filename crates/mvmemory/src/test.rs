use super::*;

fn v(txn_idx: TxnIndex, incarnation: Incarnation) -> Version {
    Version::new(txn_idx, incarnation)
}

#[test]
fn read_of_unwritten_location_is_not_found() {
    let mv: MvMemory<u32, u32> = MvMemory::new(4);
    assert_eq!(mv.read(&7, 3), MvRead::NotFound);
    assert_eq!(mv.read_version(&7, 3), MvVersion::NotFound);
}

#[test]
fn read_sees_highest_lower_writer_only() {
    let mv: MvMemory<u32, u32> = MvMemory::new(6);
    mv.record(v(1, 0), vec![(7, 10)]);
    mv.record(v(3, 2), vec![(7, 30)]);
    assert_eq!(mv.read(&7, 0), MvRead::NotFound);
    assert_eq!(mv.read(&7, 1), MvRead::NotFound, "a transaction never reads its own entry");
    assert_eq!(mv.read(&7, 2), MvRead::Value { version: v(1, 0), value: 10 });
    assert_eq!(mv.read(&7, 3), MvRead::Value { version: v(1, 0), value: 10 });
    assert_eq!(mv.read(&7, 4), MvRead::Value { version: v(3, 2), value: 30 });
    assert_eq!(mv.read_version(&7, 5), MvVersion::Version(v(3, 2)));
}

#[test]
fn record_reports_new_locations() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    assert!(mv.record(v(1, 0), vec![(1, 1), (2, 2)]), "first incarnation writing anything");
    assert!(!mv.record(v(1, 1), vec![(2, 5), (1, 6)]), "same locations, other order");
    assert!(!mv.record(v(1, 2), vec![(1, 6)]), "a subset is not new");
    assert!(mv.record(v(1, 3), vec![(1, 6), (3, 3)]), "location 3 is new");
    assert!(!mv.record(v(2, 0), vec![]), "writing nothing is never new");
}

#[test]
fn record_removes_stale_writes_of_previous_incarnation() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(0, 0), vec![(1, 10)]);
    mv.record(v(1, 0), vec![(1, 11), (2, 12)]);
    mv.record(v(1, 1), vec![(2, 22)]);
    assert_eq!(mv.read(&1, 2), MvRead::Value { version: v(0, 0), value: 10 });
    assert_eq!(mv.read(&2, 2), MvRead::Value { version: v(1, 1), value: 22 });
    assert_eq!(mv.last_written_locations(1), vec![2]);
}

#[test]
fn estimates_block_readers_and_are_replaced_or_removed_by_next_incarnation() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(1, 0), vec![(1, 11), (2, 12)]);
    mv.convert_writes_to_estimates(1);
    assert_eq!(mv.read(&1, 2), MvRead::Estimate { blocking: 1 });
    assert_eq!(mv.read_version(&2, 2), MvVersion::Estimate(1));
    assert_eq!(mv.read(&1, 1), MvRead::NotFound);
    // The next incarnation rewrites location 1 only: not new, and location 2's estimate goes.
    assert!(!mv.record(v(1, 1), vec![(1, 21)]));
    assert_eq!(mv.read(&1, 2), MvRead::Value { version: v(1, 1), value: 21 });
    assert_eq!(mv.read(&2, 2), MvRead::NotFound);
}

#[test]
fn duplicate_keys_in_one_record_keep_the_last_value() {
    let mv: MvMemory<u32, u32> = MvMemory::new(2);
    mv.record(v(0, 0), vec![(1, 1), (1, 2)]);
    assert_eq!(mv.read(&1, 1), MvRead::Value { version: v(0, 0), value: 2 });
}

#[test]
fn snapshot_is_sorted_and_cut_at_the_commit_point() {
    let mv: MvMemory<u32, u32> = MvMemory::new(4);
    for k in (0..200).rev() {
        mv.record(v(0, 0), vec![(k, k)]);
    }
    mv.record(v(0, 0), (0..200).map(|k| (k, k)));
    mv.record(v(1, 0), vec![(5, 500), (1000, 1)]);
    mv.record(v(3, 0), vec![(5, 999), (2000, 2)]);
    let snap = mv.snapshot(3).unwrap();
    assert_eq!(snap.len(), 201);
    assert!(snap.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(snap.contains(&(5, 500)) && snap.contains(&(1000, 1)));
    assert!(!snap.iter().any(|(k, _)| *k == 2000), "transaction 3 is above the cut");
}

#[test]
fn snapshot_with_estimate_below_the_cut_is_an_error() {
    let mv: MvMemory<u32, u32> = MvMemory::new(2);
    mv.record(v(0, 0), vec![(1, 1)]);
    mv.convert_writes_to_estimates(0);
    assert!(mv.snapshot(1).is_err());
    assert_eq!(mv.snapshot(0).unwrap(), vec![]);
}

#[test]
fn keys_are_compared_whole_not_by_hash() {
    // Two distinct keys with the same hash must stay distinct locations.
    #[derive(Clone, PartialEq, Eq, Debug)]
    struct Colliding(u32);
    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            0u8.hash(state);
        }
    }
    let mv: MvMemory<Colliding, u32> = MvMemory::new(2);
    mv.record(v(0, 0), vec![(Colliding(1), 1), (Colliding(2), 2)]);
    assert_eq!(mv.read(&Colliding(1), 1), MvRead::Value { version: v(0, 0), value: 1 });
    assert_eq!(mv.read(&Colliding(2), 1), MvRead::Value { version: v(0, 0), value: 2 });
    assert_eq!(mv.read(&Colliding(3), 1), MvRead::NotFound);
}

#[test]
fn version_list_keeps_order_with_out_of_order_inserts() {
    let mut list: VersionList<u32, NoDelta> = VersionList::default();
    for txn in [5, 1, 9, 3, 7] {
        assert!(list.insert(txn, Entry::Value { incarnation: 0, value: txn as u32 }));
    }
    assert!(!list.insert(3, Entry::Estimate), "replacing is not new");
    let order: Vec<_> = list.entries.iter().map(|(j, _)| *j).collect();
    assert_eq!(order, vec![1, 3, 5, 7, 9]);
    assert!(list.below(1).is_none());
    assert_eq!(list.below(2).map(|(j, _)| j), Some(1));
    assert!(matches!(list.below(5), Some((3, Entry::Estimate))));
    assert_eq!(list.below(100).map(|(j, _)| j), Some(9));
    list.remove(9);
    list.remove(4); // absent: no-op
    assert_eq!(list.below(100).map(|(j, _)| j), Some(7));
    assert!(list.get(5).is_some() && list.get(6).is_none());
}

fn add(amounts: &[i128]) -> Write<u64, Add> {
    Write::Deltas(amounts.iter().map(|&a| Add(a)).collect())
}

fn storage_of(value: Option<u64>) -> impl FnMut(&u32) -> Result<Option<u64>, String> {
    move |_| Ok(value)
}

#[test]
fn materialize_turns_committed_deltas_into_values_in_block_order() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(4);
    mv.record_writes(v(0, 0), vec![(1, add(&[5])), (2, Write::Value(9))]);
    mv.record_writes(v(1, 0), vec![(1, add(&[1, 2]))]);
    assert_eq!(mv.read_version(&1, 2), MvVersion::Deltas);
    assert_eq!(
        mv.snapshot(1).unwrap_err().0,
        "transaction 0 below the snapshot point 1 left unmaterialised deltas"
    );
    mv.materialize(0, storage_of(Some(100))).unwrap();
    assert_eq!(mv.read(&1, 1), MvRead::Value { version: v(0, 0), value: 105 });
    mv.materialize(1, storage_of(None)).unwrap();
    assert_eq!(mv.read(&1, 2), MvRead::Value { version: v(1, 0), value: 108 });
    assert_eq!(mv.snapshot(2).unwrap(), vec![(1, 108), (2, 9)]);
    // Materialising twice, or a transaction without deltas, changes nothing.
    mv.materialize(1, storage_of(None)).unwrap();
    mv.materialize(3, storage_of(None)).unwrap();
    assert_eq!(mv.snapshot(4).unwrap(), vec![(1, 108), (2, 9)]);
}

#[test]
fn materialize_reports_the_first_failing_location() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(3);
    mv.record_writes(v(0, 0), vec![(2, add(&[1])), (1, add(&[-1])), (3, add(&[-5]))]);
    assert_eq!(
        mv.materialize(0, storage_of(None)),
        Err(MaterializeError::Delta { key: 1, message: "0 + -1 does not fit in u64".into() })
    );
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(3);
    mv.record_writes(v(0, 0), vec![(4, add(&[1]))]);
    assert_eq!(
        mv.materialize(0, |_: &u32| Err::<Option<u64>, _>("down")),
        Err(MaterializeError::Storage { key: 4, error: "down" })
    );
    // Deltas over an uncommitted ESTIMATE: the caller broke the order.
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(3);
    mv.record(v(0, 0), vec![(4, 1)]);
    mv.convert_writes_to_estimates(0);
    mv.record_writes(v(1, 0), vec![(4, add(&[1]))]);
    assert!(matches!(mv.materialize(1, storage_of(None)), Err(MaterializeError::Invariant(_))));
}

#[test]
fn deltas_of_a_previous_incarnation_are_removed_or_replaced() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(3);
    assert!(mv.record_writes(v(0, 0), vec![(1, add(&[1])), (2, add(&[2]))]));
    assert!(!mv.record_writes(v(0, 1), vec![(1, Write::Value(5))]));
    assert_eq!(mv.read(&1, 1), MvRead::Value { version: v(0, 1), value: 5 });
    assert_eq!(mv.read(&2, 1), MvRead::NotFound);
    mv.convert_writes_to_estimates(0);
    assert_eq!(mv.read(&1, 2), MvRead::Estimate { blocking: 0 });
    assert!(mv.record_writes(v(0, 2), vec![(2, add(&[3]))]));
    assert_eq!(mv.read(&1, 2), MvRead::NotFound);
    assert_eq!(mv.read(&2, 2), MvRead::Deltas { base: None, deltas: smallvec::smallvec![Add(3)] });
}

#[test]
fn snapshot_parts_merge_to_the_snapshot_and_empty_the_memory() {
    // 500 locations over many shards, several writers each, the cut in the middle.
    let build = || {
        let mv: MvMemory<u32, u64> = MvMemory::new(10);
        for txn in 0..10 {
            mv.record(
                v(txn, 0),
                (0..500u32).filter(|k| k % (txn as u32 + 1) == 0).map(|k| (k, txn as u64 * 1000 + k as u64)),
            );
        }
        mv
    };
    let expected = build().snapshot(6).unwrap();
    assert_eq!(expected.len(), 500, "location 0..500 all written by transaction 0");
    for parts in [1, 2, 3, 8] {
        let mv = build();
        let runs: Vec<_> = (0..parts).map(|part| mv.take_snapshot_part(6, part, parts).unwrap()).collect();
        for run in &runs {
            assert!(run.windows(2).all(|w| w[0].0 < w[1].0), "each run is sorted");
        }
        assert_eq!(merge_runs(runs), expected, "{parts} parts");
        assert_eq!(mv.snapshot(10).unwrap(), vec![], "the parts took every location out");
    }
}

#[test]
fn taking_a_part_reports_what_the_snapshot_reports() {
    let mv: MvMemory<u32, u64> = MvMemory::new(3);
    mv.record(v(0, 0), vec![(1, 1)]);
    mv.convert_writes_to_estimates(0);
    let errors: Vec<_> = (0..2).filter_map(|part| mv.take_snapshot_part(1, part, 2).err()).collect();
    assert_eq!(errors.len(), 1, "the part holding location 1 fails");
    assert!(errors[0].0.contains("left an ESTIMATE"), "{}", errors[0].0);
}

#[test]
fn merge_runs_interleaves_and_keeps_empty_runs_harmless() {
    let runs = vec![vec![(1, 'a'), (4, 'd')], vec![], vec![(2, 'b'), (3, 'c'), (9, 'z')]];
    assert_eq!(merge_runs(runs), vec![(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (9, 'z')]);
    assert_eq!(merge_runs::<u8, u8>(vec![]), vec![]);
}

#[test]
fn pruning_committed_entries_keeps_a_hot_location_short_and_reads_exact() {
    // Every transaction adds to one location; commit (materialise) in order while later
    // transactions keep adding: reads stay exact and the list stays bounded.
    let n = 1000;
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(n);
    for txn in 0..n {
        mv.record_writes(v(txn, 0), vec![(7, add(&[1]))]);
        if txn >= 10 {
            mv.materialize(txn - 10, storage_of(Some(0))).unwrap();
            assert_eq!(
                mv.read(&7, txn - 9),
                MvRead::Value { version: v(txn - 10, 0), value: (txn - 9) as u64 }
            );
        }
        let len = mv.with_versions(&7, |versions| versions.entries.len()).unwrap();
        assert!(len <= 2 * 11 + 1, "{len} entries after transaction {txn}");
    }
}

/// An accumulator memory (key 1's deltas in per-transaction slots) and a plain one.
fn accumulator_and_plain(num_txns: usize) -> (MvMemory<u32, u64, Add>, MvMemory<u32, u64, Add>) {
    (MvMemory::with_accumulator(num_txns, Some(1)), MvMemory::new(num_txns))
}

#[test]
fn accumulator_deltas_stay_in_slots_and_reads_sum_them_in_block_order() {
    let (mv, _) = accumulator_and_plain(6);
    assert!(mv.record_writes(v(0, 0), vec![(1, add(&[5]))]), "a first delta is a new location");
    assert!(mv.record_writes(v(2, 0), vec![(1, add(&[1, 2])), (2, Write::Value(9))]));
    // Nothing in the list: a reader sums the slots on top of storage.
    assert_eq!(mv.read(&1, 1), MvRead::Deltas { base: None, deltas: smallvec::smallvec![Add(5)] });
    assert_eq!(
        mv.read(&1, 5),
        MvRead::Deltas { base: None, deltas: smallvec::smallvec![Add(5), Add(1), Add(2)] }
    );
    assert_eq!(mv.read(&1, 0), MvRead::NotFound);
    assert_eq!(mv.read_version(&1, 3), MvVersion::Deltas);
    // A full value written by transaction 3 hides everything below it.
    mv.record(v(3, 0), vec![(1, 50)]);
    assert_eq!(mv.read(&1, 4), MvRead::Value { version: v(3, 0), value: 50 });
    assert_eq!(mv.read_version(&1, 4), MvVersion::Version(v(3, 0)));
    assert!(mv.record_writes(v(4, 0), vec![(1, add(&[7]))]));
    assert_eq!(
        mv.read(&1, 5),
        MvRead::Deltas { base: Some((v(3, 0), 50)), deltas: smallvec::smallvec![Add(7)] }
    );
    // An aborted delta writer is an ESTIMATE to every reader above it.
    mv.convert_writes_to_estimates(2);
    assert_eq!(mv.read(&1, 3), MvRead::Estimate { blocking: 2 });
    assert_eq!(mv.read_version(&1, 3), MvVersion::Estimate(2));
    assert_eq!(
        mv.read(&1, 5),
        MvRead::Deltas { base: Some((v(3, 0), 50)), deltas: smallvec::smallvec![Add(7)] }
    );
    // Its next incarnation applies none: the slot is emptied, not a new location.
    assert!(!mv.record_writes(v(2, 1), vec![(2, Write::Value(9))]));
    assert_eq!(mv.read(&1, 3), MvRead::Deltas { base: None, deltas: smallvec::smallvec![Add(5)] });
    // Committed in order, the deltas become values in the list, and the snapshot has the sum.
    for txn in 0..5 {
        mv.materialize(txn, storage_of(Some(100))).unwrap();
    }
    assert_eq!(mv.read(&1, 5), MvRead::Value { version: v(4, 0), value: 57 });
    assert_eq!(mv.snapshot(6).unwrap(), vec![(1, 57), (2, 9)]);
}

#[test]
fn accumulator_materialisation_reports_failures_as_the_list_does() {
    let (mv, plain) = accumulator_and_plain(3);
    for mv in [&mv, &plain] {
        mv.record_writes(v(0, 0), vec![(2, add(&[1])), (1, add(&[-1]))]);
        assert_eq!(
            mv.materialize(0, storage_of(None)),
            Err(MaterializeError::Delta { key: 1, message: "0 + -1 does not fit in u64".into() })
        );
    }
    let (mv, _) = accumulator_and_plain(3);
    mv.record_writes(v(0, 0), vec![(1, add(&[1]))]);
    assert_eq!(
        mv.materialize(0, |_: &u32| Err::<Option<u64>, _>("down")),
        Err(MaterializeError::Storage { key: 1, error: "down" })
    );
}

/// A small deterministic generator (xorshift64*), for the random schedules below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What `txn_idx` reads at `key`, deltas resolved over storage value 100; every `ESTIMATE` alike
/// (the two memories may name different aborted writers: both make the reader wait).
fn resolved(mv: &MvMemory<u32, u64, Add>, key: u32, txn_idx: TxnIndex) -> Result<Option<u64>, String> {
    match mv.read(&key, txn_idx) {
        MvRead::Value { value, .. } => Ok(Some(value)),
        MvRead::NotFound => Ok(Some(100)),
        MvRead::Estimate { .. } => Err("estimate".into()),
        MvRead::Deltas { base, deltas } => {
            let base = base.map_or(100, |(_, value)| value);
            apply_deltas(Some(&base), &deltas).map(Some).map_err(|_| "delta failed".into())
        }
    }
}

/// What validation of a read captured as a version or as storage makes of `version`: the
/// version, or a failure (deltas to resolve or an `ESTIMATE`: the plain memory reports deltas
/// where an `ESTIMATE` lies under them, the accumulator the `ESTIMATE`).
fn version_class(version: MvVersion) -> Option<MvVersion> {
    match version {
        MvVersion::Estimate(_) | MvVersion::Deltas => None,
        other => Some(other),
    }
}

/// Random Block-STM-like schedules (records of values and deltas, aborts, commits in order,
/// reads) applied to an accumulator memory and a plain one: every read resolves to the same
/// value, every validation sees the same kind of version, the accumulator reports every new
/// location the plain memory reports, commits fail alike, and the final states are equal
/// (when no commit failed: the block ends at a failing commit).
#[test]
fn an_accumulator_reads_exactly_what_the_version_list_would() {
    const TXNS: usize = 12;
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (mv, plain) = accumulator_and_plain(TXNS);
        let mut incarnation = [0u32; TXNS];
        let mut recorded = [false; TXNS];
        let mut committed = 0;
        let mut failed = false;
        for _ in 0..120 {
            match rng.below(10) {
                0..=3 if committed < TXNS => {
                    let txn = committed + rng.below((TXNS - committed) as u64) as usize;
                    let mut writes = Vec::new();
                    for key in 1..=3u32 {
                        match rng.below(4) {
                            0 => writes.push((key, Write::Value(rng.below(200)))),
                            1 => writes.push((key, add(&[i128::from(rng.below(20) as u8) - 5]))),
                            2 => writes.push((key, add(&[1, 2]))),
                            _ => {}
                        }
                    }
                    let version = v(txn, incarnation[txn]);
                    incarnation[txn] += 1;
                    recorded[txn] = true;
                    let new = mv.record_writes(version, writes.clone());
                    let plain_new = plain.record_writes(version, writes);
                    assert!(new || !plain_new, "seed {seed}: a new location went unreported");
                }
                4 if committed < TXNS => {
                    let txn = committed + rng.below((TXNS - committed) as u64) as usize;
                    mv.convert_writes_to_estimates(txn);
                    plain.convert_writes_to_estimates(txn);
                    recorded[txn] = false;
                }
                5 if committed < TXNS && (recorded[committed] || incarnation[committed] == 0) => {
                    let (a, b) = (
                        mv.materialize(committed, storage_of(Some(100))),
                        plain.materialize(committed, storage_of(Some(100))),
                    );
                    assert_eq!(a, b, "seed {seed}: commit of {committed}");
                    if a.is_err() {
                        // The block ends there with that error; its state is not used.
                        failed = true;
                        break;
                    }
                    committed += 1;
                }
                _ => {
                    // Readers at or above the commit point: nothing below it reads any more
                    // (both memories prune what only those would see).
                    let txn = committed + rng.below((TXNS - committed) as u64 + 1) as usize;
                    let key = 1 + rng.below(3) as u32;
                    assert_eq!(
                        resolved(&mv, key, txn),
                        resolved(&plain, key, txn),
                        "seed {seed}: {key} below {txn}"
                    );
                    assert_eq!(
                        version_class(mv.read_version(&key, txn)),
                        version_class(plain.read_version(&key, txn)),
                        "seed {seed}: version of {key} below {txn}"
                    );
                }
            }
        }
        if !failed {
            assert_eq!(mv.snapshot(committed), plain.snapshot(committed), "seed {seed}: final state");
        }
    }
}
