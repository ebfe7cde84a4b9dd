//! Account lifecycle across transactions of one block: self-destruct, re-creation at the same
//! address by CREATE2, storage cleared by the self-destruct, and Cancun's EIP-6780 rules, on
//! hand-assembled contracts. Each block is checked against the values the EVM's rules give
//! (written down below, not taken from a run), sequentially and on Block-STM at 1, 2, 4 and 8
//! threads.
//!
//! The contracts:
//! - factory `F`: `CREATE2(value 0, salt 0, init code = call data)`, stores the new address (0
//!   if the creation failed) at its slot 0.
//! - child `C = CREATE2(F, 0, keccak(INIT))`: runtime `CALLER SELFDESTRUCT`. Its init code stores
//!   `SLOAD(0) + 1` at slot 1, so slot 1 tells what a re-created `C` read from its slot 0: 1 if
//!   the storage of the destroyed `C` (slot 0 = 42) is gone, 43 if it leaked through.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use blockstm_evm::{
    AccountBasic, AccountState, BlockHeader, EthBlock, EvmKey, EvmReceipt, EvmTx, EvmValue, PreState,
    SlotValue,
};
use blockstm_executor::{BlockExecutor, BlockOutput, Config, ParallelExecutor, SequentialExecutor};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use std::collections::BTreeMap;

/// `CALLDATACOPY(0, 0, CALLDATASIZE)`, `CREATE2(0, 0, CALLDATASIZE, salt 0)`, `SSTORE(0, addr)`.
const FACTORY: &[u8] = &[
    0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
    0x60, 0x00, 0x36, 0x60, 0x00, 0x60, 0x00, 0xf5, // create2(0, 0, calldatasize, 0)
    0x60, 0x00, 0x55, 0x00, // sstore(0, address); stop
];
/// `CALLER SELFDESTRUCT`.
const CHILD: &[u8] = &[0x33, 0xff];
/// `SSTORE(1, SLOAD(0) + 1)`, then returns [`CHILD`] as the runtime code.
const INIT: &[u8] = &[
    0x60, 0x00, 0x54, 0x60, 0x01, 0x01, 0x60, 0x01, 0x55, // sstore(1, sload(0) + 1)
    0x61, 0x33, 0xff, 0x60, 0x00, 0x52, // mstore(0, 0x33ff)
    0x60, 0x02, 0x60, 0x1e, 0xf3, // return(30, 2)
];
/// Init code that destroys the account it is creating: `CALLER SELFDESTRUCT`.
const INIT_SUICIDE: &[u8] = &[0x33, 0xff];

const FACTORY_ADDRESS: Address = Address::repeat_byte(0xfa);
const BASE_FEE: u64 = 1_000_000_000;

fn ether() -> U256 {
    U256::from(10u64).pow(U256::from(18))
}

fn sender(i: u8) -> Address {
    Address::repeat_byte(0x10 + i)
}

fn child() -> Address {
    FACTORY_ADDRESS.create2(B256::ZERO, keccak256(INIT))
}

fn contract(code: &[u8]) -> AccountBasic {
    let code = Bytecode::new_raw(Bytes::copy_from_slice(code));
    AccountBasic { balance: U256::ZERO, nonce: 1, code_hash: code.hash_slow(), code: Some(code) }
}

/// Senders 0..5 with one ether each, the factory, and `C` as deployed before the block with 42
/// at slot 0 and 1 000 wei.
fn pre_state() -> PreState {
    let mut state = PreState::default();
    let mut account = |address, basic| {
        state.insert(
            EvmKey::Account(address),
            EvmValue::Account(AccountState { info: Some(basic), storage_epoch: 0 }),
        );
    };
    for i in 0..5 {
        account(sender(i), AccountBasic::with_balance(ether()));
    }
    account(FACTORY_ADDRESS, contract(FACTORY));
    account(child(), AccountBasic { balance: U256::from(1000), ..contract(CHILD) });
    state.insert(
        EvmKey::Storage(child(), U256::ZERO),
        EvmValue::Storage(SlotValue { value: U256::from(42), epoch: 0 }),
    );
    state
}

fn call(from: u8, to: Address, data: &[u8]) -> EvmTx {
    EvmTx(TxEnv {
        tx_type: 2,
        caller: sender(from),
        // Enough that the factory still stores after a colliding CREATE2 took 63/64 of it.
        gas_limit: 1_000_000,
        gas_price: 2 * u128::from(BASE_FEE),
        gas_priority_fee: Some(u128::from(BASE_FEE)),
        kind: TxKind::Call(to),
        data: Bytes::copy_from_slice(data),
        nonce: 0,
        chain_id: Some(blockstm_evm::MAINNET_CHAIN_ID),
        ..TxEnv::default()
    })
}

fn block(timestamp: u64, txns: Vec<EvmTx>) -> EthBlock {
    let header = BlockHeader::synthetic(19_000_000, timestamp, 30_000_000, BASE_FEE);
    EthBlock::new(header, txns, Vec::new(), pre_state())
}

/// Shanghai (pre-Cancun): SELFDESTRUCT deletes any account with its storage.
const SHANGHAI: u64 = 1_700_000_000;
/// Cancun (EIP-6780): SELFDESTRUCT deletes only an account created in the same transaction.
const CANCUN: u64 = 1_720_000_000;

/// Runs `block` sequentially and on Block-STM at 1, 2, 4 and 8 threads; all must agree, and
/// every transaction must succeed. Returns the receipts and the post-state.
fn run(block: &EthBlock) -> (Vec<EvmReceipt>, BTreeMap<EvmKey, EvmValue>) {
    let seq: BlockOutput<EvmKey, EvmValue, EvmReceipt> =
        SequentialExecutor::new(block.vm()).execute_block(&block.pre_state, &block.txns).unwrap();
    for (i, r) in seq.outputs.iter().enumerate() {
        assert!(r.success, "transaction {i} failed: {r:?}");
    }
    for threads in [1, 2, 4, 8] {
        let par = ParallelExecutor::new(block.vm(), Config::new(threads).unwrap().with_adaptive(false))
            .execute_block(&block.pre_state, &block.txns)
            .unwrap();
        assert_eq!(par.outputs, seq.outputs, "{threads} threads: receipts");
        assert_eq!(par.state, seq.state, "{threads} threads: state");
    }
    (seq.outputs, block.post_state(&seq.state).unwrap())
}

fn slot(post: &BTreeMap<EvmKey, EvmValue>, address: Address, slot: u64) -> U256 {
    match post.get(&EvmKey::Storage(address, U256::from(slot))) {
        Some(EvmValue::Storage(s)) => s.value,
        None => U256::ZERO,
        Some(other) => panic!("slot {slot} of {address} holds {other:?}"),
    }
}

fn account(post: &BTreeMap<EvmKey, EvmValue>, address: Address) -> Option<AccountBasic> {
    match post.get(&EvmKey::Account(address)) {
        Some(EvmValue::Account(a)) => a.info.clone(),
        None => None,
        Some(other) => panic!("account {address} holds {other:?}"),
    }
}

fn word(address: Address) -> U256 {
    address.into_word().into()
}

#[test]
fn pre_cancun_self_destruct_clears_storage_and_create2_recreates_the_account() {
    let c = child();
    let block = block(
        SHANGHAI,
        vec![
            call(0, c, &[]),                // C self-destructs: account and storage (slot 0 = 42) gone
            call(1, FACTORY_ADDRESS, INIT), // re-created at the same address: reads slot 0 = 0
            call(2, c, &[]),                // destroyed again, with the slot 1 it wrote
            call(3, FACTORY_ADDRESS, INIT), // and re-created again
        ],
    );
    let (receipts, post) = run(&block);
    let recreated = account(&post, c).expect("C exists after the block");
    assert_eq!(recreated.code_hash, keccak256(CHILD), "runtime code of the re-created C");
    assert_eq!(recreated.nonce, 1, "a contract starts at nonce 1");
    assert_eq!(recreated.balance, U256::ZERO, "the 1 000 wei went to the first destroyer");
    assert_eq!(slot(&post, c, 0), U256::ZERO, "slot 0 of the destroyed C is gone");
    assert_eq!(slot(&post, c, 1), U256::from(1), "the re-created C read 0 from slot 0 (43 if 42 leaked)");
    assert_eq!(slot(&post, FACTORY_ADDRESS, 0), word(c), "the factory recorded the new C");
    let destroyer = account(&post, sender(0)).expect("sender 0 exists").balance;
    let gas = U256::from(receipts[0].gas_used) * U256::from(2 * BASE_FEE);
    assert_eq!(destroyer, ether() - gas + U256::from(1000), "C's 1 000 wei went to its destroyer");
}

#[test]
fn cancun_self_destruct_keeps_an_old_account_and_removes_one_created_in_the_same_transaction() {
    let c = child();
    let doomed = FACTORY_ADDRESS.create2(B256::ZERO, keccak256(INIT_SUICIDE));
    let block = block(
        CANCUN,
        vec![
            call(0, c, &[]),                        // EIP-6780: only the balance moves
            call(1, FACTORY_ADDRESS, INIT),         // C still has code: CREATE2 collides, returns 0
            call(2, FACTORY_ADDRESS, INIT_SUICIDE), // created and destroyed in one transaction
        ],
    );
    let (_, post) = run(&block);
    let kept = account(&post, c).expect("C survives its SELFDESTRUCT under Cancun");
    assert_eq!(kept.code_hash, keccak256(CHILD));
    assert_eq!(kept.balance, U256::ZERO, "its balance went to the caller");
    assert_eq!(slot(&post, c, 0), U256::from(42), "its storage stays");
    assert_eq!(slot(&post, c, 1), U256::ZERO, "no init code ran over it");
    assert_eq!(account(&post, doomed), None, "an account destroyed in its creating transaction is gone");
    assert_eq!(slot(&post, FACTORY_ADDRESS, 0), word(doomed), "the last CREATE2 returned the address");
}

#[test]
fn a_destroyed_account_that_receives_ether_comes_back_without_its_storage() {
    let c = child();
    let mut transfer = call(1, c, &[]);
    transfer.0.value = U256::from(5);
    let block = block(SHANGHAI, vec![call(0, c, &[]), transfer]);
    let (_, post) = run(&block);
    let revived = account(&post, c).expect("the transfer re-created C as a plain account");
    assert_eq!((revived.balance, revived.nonce, revived.code_hash), (U256::from(5), 0, keccak256([])));
    assert_eq!(slot(&post, c, 0), U256::ZERO, "slot 0 died with the self-destruct");
}

#[test]
fn creation_over_an_address_with_storage_but_no_code_or_nonce_starts_with_empty_storage() {
    // An account with no code and nonce 0 but a storage slot (the few mainnet addresses of
    // EIP-7610). revm 43 does not count storage as a collision, so CREATE2 succeeds; the old
    // slot must then not show under the new contract (the creation's storage epoch).
    let c = child();
    let mut block = block(SHANGHAI, vec![call(1, FACTORY_ADDRESS, INIT)]);
    block.pre_state.insert(
        EvmKey::Account(c),
        EvmValue::Account(AccountState {
            info: Some(AccountBasic::with_balance(U256::ZERO)),
            storage_epoch: 0,
        }),
    );
    let (_, post) = run(&block);
    assert_eq!(slot(&post, FACTORY_ADDRESS, 0), word(c), "created");
    assert_eq!(account(&post, c).map(|a| a.code_hash), Some(keccak256(CHILD)));
    assert_eq!(slot(&post, c, 0), U256::ZERO, "the old slot 0 is not the new contract's");
    assert_eq!(slot(&post, c, 1), U256::from(1), "the init code read 0 from slot 0");
}
