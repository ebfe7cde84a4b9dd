//! Block-level access lists (EIP-7928) built from Block-STM: for every mainnet corpus block,
//! the list the client API builds sequentially and on Block-STM at 1, 2, 4 and 8 threads (the
//! adaptive choice of the sequential path off) is byte for byte (RLP) the one revm's
//! sequential builder records when alloy-evm's block executor runs the block, and building it
//! changes nothing else of the result. The same holds through the alloy-evm integration
//! (`BlockStmExecutor::execute_block_indexed` over a `State` recording the list).
//!
//! Executing a block from its list gives the sequential result, through the client API and
//! through the alloy-evm integration (`BlockStmExecutor::execute_block_from_access_list`); a
//! list corrupted in any way is rejected by both, naming where it is wrong.
//!
//! Needs `BLOCKSTM_ETH_FIXTURES` (CI sets it to `../shared/fixtures/ethereum-mainnet`); without it
//! the test says it was skipped.

use alloy_eip7928::{
    AccountChanges, BalanceChange, BlockAccessIndex, NonceChange, SlotChanges, StorageChange,
};
use alloy_evm::block::BlockExecutionError;
use alloy_evm::eth::spec::EthSpec;
use alloy_primitives::{Address, U256};
use blockstm_evm::oracle::{
    OracleBlock, alloy_evm_block, alloy_evm_block_access_list, bundle_difference,
    through_factory_from_access_list, through_factory_with_access_list,
};
use blockstm_evm::{
    AccessListError, BlockAccessList, BlockExecution, BlockStmExecutorFactory, ClientBlock, ClientError,
    ExecuteOptions, Fixtures, block_access_list_hash, block_access_list_rlp, execute_block_from_access_list,
    execute_block_with,
};
use blockstm_executor::Config;

fn fixtures() -> Option<Fixtures> {
    match Fixtures::from_env() {
        None => {
            eprintln!("access-list test skipped: set BLOCKSTM_ETH_FIXTURES to the mainnet fixture directory");
            None
        }
        Some(fixtures) => Some(fixtures.unwrap_or_else(|e| panic!("{e}"))),
    }
}

fn check_block(client: &ClientBlock) -> Result<usize, String> {
    let number = client.header.number;
    let chain = EthSpec::mainnet();
    let input = client.input();
    let expected = alloy_evm_block_access_list(&client.db, &chain, input.env, input.ctx, input.transactions)
        .map_err(|e| format!("block {number}: alloy-evm: {e}"))?;
    let expected_rlp = block_access_list_rlp(&expected);
    let plain = execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential())
        .map_err(|e| format!("block {number}: {e}"))?;
    if plain.block_access_list.is_some() {
        return Err(format!("block {number}: a list was built without being asked for"));
    }
    let mut runs = vec![("sequential".to_owned(), ExecuteOptions::sequential())];
    for threads in [1, 2, 4, 8] {
        let config = Config::new(threads).unwrap().with_adaptive(false);
        runs.push((format!("{threads} threads"), ExecuteOptions::parallel(config)));
    }
    for (name, options) in runs {
        let out: BlockExecution =
            execute_block_with(&client.db, &chain, client.input(), options.with_block_access_list())
                .map_err(|e| format!("block {number}, {name}: {e}"))?;
        let ours = out.block_access_list.as_ref().ok_or(format!("block {number}, {name}: no list"))?;
        if block_access_list_rlp(ours) != expected_rlp {
            return Err(format!(
                "block {number}, {name}: {}",
                alloy_eip7928::BalDiff::between(ours, &expected)
            ));
        }
        if block_access_list_hash(ours) != block_access_list_hash(&expected) {
            return Err(format!("block {number}, {name}: the hashes differ"));
        }
        if out.receipts != plain.receipts || out.state != plain.state || out.gas_used != plain.gas_used {
            return Err(format!("block {number}, {name}: building the list changed the result"));
        }
    }
    // Through the alloy-evm integration, over revm's `State` recording the list: the State's
    // own builder sees each transaction committed at its index.
    let oracle =
        alloy_evm_block(&client.db, &chain, client.input().env, client.input().ctx, &client.transactions)
            .map_err(|e| format!("block {number}: alloy-evm: {e}"))?;
    for threads in [2, 8] {
        let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(threads).unwrap());
        let input = client.input();
        let (block, list) =
            through_factory_with_access_list(&factory, &client.db, input.env, input.ctx, input.transactions)
                .map_err(|e| format!("block {number}, executor factory at {threads} threads: {e}"))?;
        let at = format!("block {number}, executor factory at {threads} threads");
        if block_access_list_rlp(&list) != expected_rlp {
            return Err(format!("{at}: {}", alloy_eip7928::BalDiff::between(&list, &expected)));
        }
        if block.receipts != oracle.receipts || block.gas_used != oracle.gas_used {
            return Err(format!("{at}: the receipts differ"));
        }
        if let Some(difference) = bundle_difference(&client.db, &oracle.bundle, &block.bundle) {
            return Err(format!("{at}: {difference}"));
        }
        let parallel = u64::from(!client.transactions.is_empty());
        if factory.path_counts().parallel != parallel {
            return Err(format!("{at}: ran on {:?}", factory.path_counts()));
        }
    }
    // Executed from the list through the alloy-evm integration: alloy-evm's result.
    for threads in [1, 2, 8] {
        let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(threads).unwrap());
        let input = client.input();
        let at = format!("block {number}, executor factory from its list at {threads} threads");
        let block = through_factory_from_access_list(
            &factory,
            &client.db,
            input.env,
            input.ctx,
            input.transactions,
            &expected,
        )
        .map_err(|e| format!("{at}: {e}"))?;
        if block.receipts != oracle.receipts || block.gas_used != oracle.gas_used {
            return Err(format!("{at}: the receipts differ"));
        }
        if let Some(difference) = bundle_difference(&client.db, &oracle.bundle, &block.bundle) {
            return Err(format!("{at}: {difference}"));
        }
        let counts = factory.path_counts();
        if counts.parallel + counts.sequential != 1 {
            return Err(format!("{at}: ran on {counts:?}"));
        }
    }
    // Executed from the list: the sequential result, with no transaction executed twice.
    for threads in [1, 2, 4, 8] {
        let config = Config::new(threads).unwrap();
        let out = execute_block_from_access_list(&client.db, &chain, client.input(), &expected, config)
            .map_err(|e| format!("block {number}, from its list at {threads} threads: {e}"))?;
        if out.receipts != plain.receipts || out.state != plain.state || out.gas_used != plain.gas_used {
            return Err(format!("block {number}, from its list at {threads} threads: the result differs"));
        }
        if out.stats.aborts != 0 || out.stats.executions != client.transactions.len() {
            return Err(format!(
                "block {number}, from its list at {threads} threads: {} executions of {} transactions",
                out.stats.executions,
                client.transactions.len()
            ));
        }
    }
    Ok(expected.len())
}

#[test]
fn every_corpus_blocks_access_list_is_revms_at_every_thread_count() {
    let Some(fixtures) = fixtures() else { return };
    let numbers = fixtures.block_numbers().unwrap_or_else(|e| panic!("{e}"));
    assert!(!numbers.is_empty(), "no blocks in {}", fixtures.dir().display());
    let (mut failures, mut accounts) = (Vec::new(), 0);
    for &number in &numbers {
        let block = fixtures.load(number).unwrap_or_else(|e| panic!("block {number}: {e}"));
        let client = fixtures.load_client(&block).unwrap_or_else(|e| panic!("block {number}: {e}"));
        match check_block(&client) {
            Ok(n) => accounts += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} of {} blocks:\n{}", failures.len(), numbers.len(), failures.join("\n"));
    // The lists are not trivially equal: the corpus touches thousands of accounts.
    assert!(accounts > 1000, "only {accounts} accounts listed over the corpus");
}

/// The kinds of corruption a wrong list can carry, each made from a real list.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    MissingAccount,
    ExtraAccount,
    MissingWrittenSlot,
    ExtraWrittenSlot,
    MissingRead,
    ExtraRead,
    MissingChange,
    ExtraChange,
    WrongValue,
    WrongIndex,
    UnsortedAccounts,
    DuplicatedAccount,
    UnsortedSlots,
    DuplicatedChange,
    IndexBeyondBlock,
}

/// What the rejection must name: malformed, or the location (address, slot, index) of the
/// corruption.
#[derive(Debug, PartialEq)]
enum Expected {
    Malformed,
    At { address: Address, slot: Option<U256>, index: Option<u64> },
}

/// `list` corrupted as `kind` says, with what the rejection must name; `None` if `list` has no
/// entry of the kind.
fn corrupt(
    list: &BlockAccessList,
    kind: Corruption,
    transactions: usize,
) -> Option<(BlockAccessList, Expected)> {
    let mut list = list.clone();
    let at = |address, slot, index| Expected::At { address, slot, index };
    let with = |list: &BlockAccessList, f: &dyn Fn(&AccountChanges) -> bool| list.iter().position(f);
    let expected = match kind {
        Corruption::MissingAccount => {
            let i = with(&list, &|a| !a.balance_changes.is_empty())?;
            let removed = list.remove(i);
            let first = removed.balance_changes[0].block_access_index.get();
            let lowest = [
                removed.nonce_changes.first().map(|c| c.block_access_index.get()),
                removed.code_changes.first().map(|c| c.block_access_index.get()),
                removed.storage_changes.iter().map(|s| s.changes[0].block_access_index.get()).min(),
            ]
            .into_iter()
            .flatten()
            .fold(first, u64::min);
            at(removed.address, None, Some(lowest))
        }
        Corruption::ExtraAccount => {
            let address = Address::repeat_byte(0xee);
            if list.iter().any(|a| a.address == address) {
                return None;
            }
            let i = list.partition_point(|a| a.address < address);
            list.insert(i, AccountChanges::new(address));
            at(address, None, None)
        }
        Corruption::MissingWrittenSlot => {
            let i = with(&list, &|a| !a.storage_changes.is_empty())?;
            let slot = list[i].storage_changes.remove(0);
            at(list[i].address, Some(slot.slot), Some(slot.changes[0].block_access_index.get()))
        }
        Corruption::ExtraWrittenSlot => {
            let i = with(&list, &|a| !a.storage_changes.is_empty())?;
            let slot = U256::MAX;
            let account = &mut list[i];
            if account.storage_changes.iter().any(|s| s.slot == slot) || account.storage_reads.contains(&slot)
            {
                return None;
            }
            account.storage_changes.push(SlotChanges::new(
                slot,
                vec![StorageChange::new(BlockAccessIndex::new(1), U256::from(7))],
            ));
            at(account.address, Some(slot), Some(1))
        }
        Corruption::MissingRead => {
            let i = with(&list, &|a| !a.storage_reads.is_empty())?;
            let slot = list[i].storage_reads.remove(0);
            at(list[i].address, Some(slot), None)
        }
        Corruption::ExtraRead => {
            let i = with(&list, &|a| !a.storage_changes.is_empty() || !a.storage_reads.is_empty())?;
            let slot = U256::MAX - U256::from(1);
            let account = &mut list[i];
            if account.storage_changes.iter().any(|s| s.slot == slot) || account.storage_reads.contains(&slot)
            {
                return None;
            }
            account.storage_reads.push(slot);
            at(account.address, Some(slot), None)
        }
        Corruption::MissingChange => {
            let i = with(&list, &|a| a.balance_changes.len() > 1)?;
            let change = list[i].balance_changes.remove(1);
            at(list[i].address, None, Some(change.block_access_index.get()))
        }
        Corruption::ExtraChange => {
            // A nonce change after the last transaction, where none is.
            let index = transactions as u64 + 1;
            let i =
                with(&list, &|a| a.nonce_changes.last().is_some_and(|c| c.block_access_index.get() < index))?;
            let account = &mut list[i];
            let nonce = account.nonce_changes.last()?.new_nonce + 5;
            account.nonce_changes.push(NonceChange::new(BlockAccessIndex::new(index), nonce));
            at(account.address, None, Some(index))
        }
        Corruption::WrongValue => {
            let i = with(&list, &|a| !a.storage_changes.is_empty())?;
            let account = &mut list[i];
            let slot = account.storage_changes[0].slot;
            let change = &mut account.storage_changes[0].changes[0];
            change.new_value = change.new_value.wrapping_add(U256::from(1));
            let index = change.block_access_index.get();
            at(account.address, Some(slot), Some(index))
        }
        Corruption::WrongIndex => {
            // A balance change moved to an index no change of the account holds, in order.
            let i = with(&list, &|a| {
                let c = &a.balance_changes;
                !c.is_empty()
                    && c.windows(2).chain([&c[c.len() - 1..]]).any(|w| match w {
                        [a, b] => b.block_access_index.get() > a.block_access_index.get() + 1,
                        [_] => true,
                        _ => false,
                    })
            })?;
            let account = &mut list[i];
            let c = &mut account.balance_changes;
            let j = (0..c.len()).find(|&j| {
                c.get(j + 1)
                    .is_none_or(|next| next.block_access_index.get() > c[j].block_access_index.get() + 1)
            })?;
            let old = c[j].block_access_index.get();
            if old > transactions as u64 {
                return None;
            }
            c[j].block_access_index = BlockAccessIndex::new(old + 1);
            at(account.address, None, Some(old))
        }
        Corruption::UnsortedAccounts => {
            if list.len() < 2 {
                return None;
            }
            list.swap(0, 1);
            Expected::Malformed
        }
        Corruption::DuplicatedAccount => {
            let account = list.first()?.clone();
            list.insert(0, account);
            Expected::Malformed
        }
        Corruption::UnsortedSlots => {
            let i = with(&list, &|a| a.storage_changes.len() > 1)?;
            list[i].storage_changes.swap(0, 1);
            Expected::Malformed
        }
        Corruption::DuplicatedChange => {
            let i = with(&list, &|a| !a.balance_changes.is_empty())?;
            let change = list[i].balance_changes[0].clone();
            list[i].balance_changes.insert(0, change);
            Expected::Malformed
        }
        Corruption::IndexBeyondBlock => {
            let i = with(&list, &|a| !a.balance_changes.is_empty())?;
            list[i].balance_changes.last_mut()?.block_access_index =
                BlockAccessIndex::new(transactions as u64 + 2);
            Expected::Malformed
        }
    };
    Some((list, expected))
}

/// Whether `error` names what `expected` says.
fn names(error: &ClientError, expected: &Expected) -> bool {
    match (error, expected) {
        (ClientError::AccessList(AccessListError::Malformed(_)), Expected::Malformed) => true,
        (
            ClientError::AccessList(AccessListError::Mismatch { address, slot, index, .. }),
            Expected::At { address: a, slot: s, index: i },
        ) => address == a && slot == s && index == i,
        _ => false,
    }
}

/// Corpus blocks with many transactions (the richest lists).
fn rich_blocks(fixtures: &Fixtures, count: usize) -> Vec<ClientBlock> {
    let mut blocks: Vec<_> = fixtures
        .block_numbers()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|number| {
            let block = fixtures.load(number).unwrap_or_else(|e| panic!("block {number}: {e}"));
            fixtures.load_client(&block).unwrap_or_else(|e| panic!("block {number}: {e}"))
        })
        .filter(|client| client.header.number >= 4_370_000)
        .collect();
    blocks.sort_by_key(|client| std::cmp::Reverse(client.transactions.len()));
    blocks.truncate(count);
    blocks
}

fn reference(client: &ClientBlock) -> BlockAccessList {
    let input = client.input();
    alloy_evm_block_access_list(&client.db, &EthSpec::mainnet(), input.env, input.ctx, input.transactions)
        .unwrap_or_else(|e| panic!("block {}: {e}", client.header.number))
}

/// `client`'s block executed from `list` through the executor factory on `threads` threads.
fn through_factory(
    client: &ClientBlock,
    list: &BlockAccessList,
    threads: usize,
) -> Result<OracleBlock, BlockExecutionError> {
    let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), Config::new(threads).unwrap());
    let input = client.input();
    through_factory_from_access_list(&factory, &client.db, input.env, input.ctx, input.transactions, list)
}

#[test]
fn every_kind_of_wrong_list_is_rejected_naming_where_it_is_wrong() {
    let Some(fixtures) = fixtures() else { return };
    let kinds = [
        Corruption::MissingAccount,
        Corruption::ExtraAccount,
        Corruption::MissingWrittenSlot,
        Corruption::ExtraWrittenSlot,
        Corruption::MissingRead,
        Corruption::ExtraRead,
        Corruption::MissingChange,
        Corruption::ExtraChange,
        Corruption::WrongValue,
        Corruption::WrongIndex,
        Corruption::UnsortedAccounts,
        Corruption::DuplicatedAccount,
        Corruption::UnsortedSlots,
        Corruption::DuplicatedChange,
        Corruption::IndexBeyondBlock,
    ];
    let mut failures = Vec::new();
    let mut made = vec![0; kinds.len()];
    for client in rich_blocks(&fixtures, 3) {
        let number = client.header.number;
        let list = reference(&client);
        for (k, kind) in kinds.iter().enumerate() {
            let Some((wrong, expected)) = corrupt(&list, *kind, client.transactions.len()) else { continue };
            made[k] += 1;
            for threads in [1, 4] {
                let at = format!("block {number}, {kind:?}, executor factory at {threads} threads");
                match through_factory(&client, &wrong, threads) {
                    Ok(_) => failures.push(format!("{at}: accepted")),
                    Err(e) => match AccessListError::in_block_error(&e) {
                        Some(error) if names(&ClientError::AccessList(error.clone()), &expected) => {}
                        _ => failures.push(format!("{at}: {e}; expected {expected:?}")),
                    },
                }
                let config = Config::new(threads).unwrap();
                match execute_block_from_access_list(
                    &client.db,
                    &EthSpec::mainnet(),
                    client.input(),
                    &wrong,
                    config,
                ) {
                    Ok(_) => failures.push(format!("block {number}, {kind:?}, {threads} threads: accepted")),
                    Err(e) if !names(&e, &expected) => failures.push(format!(
                        "block {number}, {kind:?}, {threads} threads: {e}; expected {expected:?}"
                    )),
                    Err(_) => {}
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (kind, made) in kinds.iter().zip(made) {
        assert!(made > 0, "no block's list could be corrupted as {kind:?}");
    }
}

/// A small xorshift generator: the property test's mutations, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// `list` with one random entry changed: a value, an index, an entry dropped or copied.
fn mutate(list: &mut BlockAccessList, rng: &mut Rng, transactions: usize) {
    let i = rng.below(list.len());
    let max_index = transactions as u64 + 1;
    let account = &mut list[i];
    let index = |rng: &mut Rng| BlockAccessIndex::new(rng.below(max_index as usize + 1) as u64);
    match rng.below(9) {
        0 => account.balance_changes.push(BalanceChange::new(index(rng), U256::from(rng.below(1000)))),
        1 if !account.balance_changes.is_empty() => {
            let j = rng.below(account.balance_changes.len());
            account.balance_changes[j].post_balance += U256::from(1 + rng.below(3));
        }
        2 if !account.nonce_changes.is_empty() => {
            let j = rng.below(account.nonce_changes.len());
            account.nonce_changes[j].block_access_index = index(rng);
        }
        3 if !account.storage_changes.is_empty() => {
            let j = rng.below(account.storage_changes.len());
            let slot = &mut account.storage_changes[j];
            let k = rng.below(slot.changes.len());
            slot.changes[k].new_value ^= U256::from(1u64 << rng.below(64));
        }
        4 if !account.storage_changes.is_empty() => {
            let j = rng.below(account.storage_changes.len());
            account.storage_changes.remove(j);
        }
        5 if !account.storage_reads.is_empty() => {
            let j = rng.below(account.storage_reads.len());
            let slot = account.storage_reads.remove(j);
            if rng.below(2) == 0 {
                // Read becomes written: a change the block did not make.
                account
                    .storage_changes
                    .push(SlotChanges::new(slot, vec![StorageChange::new(index(rng), slot)]));
                account.storage_changes.sort_by_key(|s| s.slot);
            }
        }
        6 if !account.code_changes.is_empty() => {
            account.code_changes[0].new_code = alloy_primitives::Bytes::from_static(&[0x60, 0x00]);
        }
        7 => {
            list.remove(i);
        }
        _ => {
            let copy = list[i].clone();
            list.insert(i, copy);
        }
    }
}

#[test]
fn randomly_mutated_lists_never_get_a_wrong_result_accepted() {
    let Some(fixtures) = fixtures() else { return };
    let (mut rejected, mut runs) = (0, 0);
    for (b, client) in rich_blocks(&fixtures, 2).into_iter().enumerate() {
        let number = client.header.number;
        let chain = EthSpec::mainnet();
        let list = reference(&client);
        let truth = execute_block_with(&client.db, &chain, client.input(), ExecuteOptions::sequential())
            .unwrap_or_else(|e| panic!("block {number}: {e}"));
        let input = client.input();
        let oracle = alloy_evm_block(&client.db, &chain, input.env, input.ctx, input.transactions)
            .unwrap_or_else(|e| panic!("block {number}: alloy-evm: {e}"));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (b as u64 + 1));
        for round in 0..60 {
            let mut wrong = list.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut wrong, &mut rng, client.transactions.len());
            }
            let threads = [1, 2, 4, 8][round % 4];
            runs += 2;
            match through_factory(&client, &wrong, threads) {
                Err(e) if AccessListError::in_block_error(&e).is_some() => rejected += 1,
                Err(e) => panic!("block {number}, round {round}, executor factory: not for its list: {e}"),
                Ok(block) => {
                    assert_eq!(
                        block_access_list_rlp(&wrong),
                        block_access_list_rlp(&list),
                        "block {number}, round {round}: a wrong list accepted by the executor factory"
                    );
                    assert_eq!(block.receipts, oracle.receipts, "block {number}, round {round}");
                    let difference = bundle_difference(&client.db, &oracle.bundle, &block.bundle);
                    assert_eq!(difference, None, "block {number}, round {round}");
                }
            }
            match execute_block_from_access_list(
                &client.db,
                &chain,
                client.input(),
                &wrong,
                Config::new(threads).unwrap(),
            ) {
                Err(ClientError::AccessList(_)) => rejected += 1,
                Err(e) => panic!("block {number}, round {round}: rejected, but not for its list: {e}"),
                Ok(out) => {
                    // Accepted: then the list must be the true one, and the result the true result.
                    assert_eq!(
                        block_access_list_rlp(&wrong),
                        block_access_list_rlp(&list),
                        "block {number}, round {round}: a wrong list accepted"
                    );
                    assert_eq!(
                        (&out.receipts, &out.state),
                        (&truth.receipts, &truth.state),
                        "block {number}, round {round}"
                    );
                }
            }
        }
    }
    // Most mutations change the list (a few undo themselves or copy an equal value).
    assert!(rejected * 10 >= runs * 9, "only {rejected} of {runs} mutated lists were rejected");
}
