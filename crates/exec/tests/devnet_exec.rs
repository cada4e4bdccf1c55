//! The TransactionManager and ExecutionManager against a real devnet (anvil, Safe 1.4.1, OpenZeppelin tokens):
//! the Safe transaction hash, decoded reverts, a stuck transaction replaced with a fee bump, and a transaction
//! re-tracked after the block holding it is rolled back.

use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::bindings::{IERC20, ISafe};
use sextant_chain::{Rpc, calls, safe};
use sextant_exec::journal::{Journal, TxStatus};
use sextant_exec::{
    Error, ExecSettings, ExecutionManager, LocalKey, Signer, TransactionManager, TxSettings, call_key, view,
};
use std::time::{Duration, Instant};

#[path = "../../runtime/tests/common/mod.rs"]
mod common;

use common::Net;

/// The Safe owner's key: anvil's public test key number 1, never for real funds.
const OWNER_KEY: &str = common::KEYS[1];

fn net() -> Net {
    Net::up()
}

#[test]
fn safe_hash_matches_the_safe_and_reverts_are_decoded_before_signing() {
    let net = net();
    let rpc = net.rpc();
    let key = LocalKey::from_hex(OWNER_KEY).unwrap();
    let safe = net.contract("Safe");
    let tm = TransactionManager::new(&rpc, &key, 31337, safe, TxSettings::default()).unwrap();
    let info = tm.check_safe().unwrap();
    assert_eq!((info.version.as_str(), info.threshold), ("1.4.1", 1));
    assert_eq!(info.owners, vec![key.address().parse::<Address>().unwrap()]);

    // Our EIP-712 hash is the one the Safe computes.
    let call = calls::wrap(net.contract("WETH"), U256::from(5u8));
    let stx = safe::safe_tx(&call, 7);
    let ours = safe::safe_tx_hash(&stx, 31337, safe);
    let req = sextant_chain::alloy::rpc::types::TransactionRequest::default()
        .to(safe)
        .input(safe::get_transaction_hash_calldata(&stx).into());
    let theirs = rpc.call(&req).unwrap();
    assert_eq!(theirs.as_ref(), ours.as_slice());

    // Spending more USDC than the Safe holds: the token's own custom error, decoded, and nothing signed.
    let usdc = net.contract("USDC");
    let held = view(&rpc, usdc, &IERC20::balanceOfCall { owner: safe }).unwrap();
    let too_much = sextant_chain::Call {
        to: usdc,
        value: U256::ZERO,
        data: sextant_chain::alloy::sol_types::SolCall::abi_encode(&IERC20::transferCall {
            to: Address::repeat_byte(9),
            amount: held + U256::from(1u8),
        })
        .into(),
        label: "transfer too much USDC".into(),
    };
    let e = tm.build(&too_much, 0).unwrap_err();
    assert!(matches!(e, Error::Reverted(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("transfer too much USDC would revert") && text.contains("ERC20InsufficientBalance"),
        "{text}"
    );

    // A key that does not own the Safe is refused with the owners listed.
    let stranger = LocalKey::from_hex("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6").unwrap();
    let tm2 = TransactionManager::new(&rpc, &stranger, 31337, safe, TxSettings::default()).unwrap();
    let e = tm2.check_safe().unwrap_err().to_string();
    assert!(e.contains("not an owner") && e.contains(&key.address()), "{e}");
    // And an address without a Safe is named as such.
    let tm3 = TransactionManager::new(&rpc, &key, 31337, Address::repeat_byte(0x42), TxSettings::default()).unwrap();
    assert!(tm3.check_safe().unwrap_err().to_string().contains("no contract at"));
}

/// Runs one step on its own thread (the manager's pieces are per-thread), returning the journal's path.
fn run_step_in_thread(
    net: &Net,
    settings: ExecSettings,
    call: sextant_chain::Call,
) -> (std::path::PathBuf, std::thread::JoinHandle<Result<u64, String>>) {
    let path = net.dir.path().join(format!("journal-{}.db", std::process::id() ^ rand_id()));
    let url = net.devnet.rpc_url.clone();
    let safe = net.contract("Safe");
    let p = path.clone();
    Journal::open(&path).unwrap();
    let handle = std::thread::spawn(move || {
        let rpc = Rpc::new(&url, Duration::from_secs(10)).unwrap();
        let key = LocalKey::from_hex(OWNER_KEY).unwrap();
        let tm = TransactionManager::new(&rpc, &key, 31337, safe, TxSettings::default()).unwrap();
        let journal = Journal::open(&p).unwrap();
        let log = |m: &str| eprintln!("  {m}");
        let em = ExecutionManager::new(&tm, &journal, settings, &log);
        em.run_step(1, 0, &call).map(|r| r.block_number.unwrap_or(0)).map_err(|e| e.to_string())
    });
    (path, handle)
}

fn rand_id() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stuck_transaction_is_replaced_at_the_same_nonce_and_executes_once() {
    let net = net();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let weth = net.contract("WETH");
    let before = view(&rpc, weth, &IERC20::balanceOfCall { owner: safe }).unwrap();
    let nonce0 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    rpc.request("evm_setAutomine", serde_json::json!([false])).unwrap();
    let settings = ExecSettings {
        poll: Duration::from_millis(50),
        stuck_after: Duration::from_millis(700),
        ..ExecSettings::default()
    };
    let call = calls::wrap(weth, U256::from(10u128.pow(18)));
    let key = call_key(&call);
    let (path, handle) = run_step_in_thread(&net, settings, call);
    let journal = Journal::open(&path).unwrap();
    // Nothing is mined while automine is off: the manager bumps the fee at the same nonce.
    wait_for("a fee-bumped replacement", || journal.step_txs(1, 0, &key).unwrap().len() >= 2);
    rpc.request("evm_mine", serde_json::json!([])).unwrap();
    rpc.request("evm_setAutomine", serde_json::json!([true])).unwrap();
    let result = handle.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    let txs = journal.step_txs(1, 0, &key).unwrap();
    assert!(txs.iter().all(|t| t.nonce == txs[0].nonce && t.safe_nonce == txs[0].safe_nonce), "{txs:#?}");
    assert_eq!(txs.iter().filter(|t| t.status == TxStatus::Mined).count(), 1, "{txs:#?}");
    assert!(txs.iter().all(|t| matches!(t.status, TxStatus::Mined | TxStatus::Replaced)), "{txs:#?}");
    assert!(txs[1].max_fee * 100 >= txs[0].max_fee * 115, "the bump raises the fee by at least 15 %");
    assert!(txs[1].priority_fee > txs[0].priority_fee);
    // Executed once.
    assert_eq!(view(&rpc, safe, &ISafe::nonceCall {}).unwrap(), nonce0 + U256::from(1u8));
    assert_eq!(view(&rpc, weth, &IERC20::balanceOfCall { owner: safe }).unwrap(), before + U256::from(10u128.pow(18)));
}

#[test]
fn a_transaction_whose_block_is_rolled_back_is_tracked_again_and_lands_once() {
    let net = net();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let weth = net.contract("WETH");
    let before = view(&rpc, weth, &IERC20::balanceOfCall { owner: safe }).unwrap();
    let settings = ExecSettings { confirmations: 3, poll: Duration::from_millis(50), ..ExecSettings::default() };
    let call = calls::wrap(weth, U256::from(10u128.pow(18)));
    let key = call_key(&call);
    let (path, handle) = run_step_in_thread(&net, settings, call);
    let journal = Journal::open(&path).unwrap();
    let hash = || journal.step_txs(1, 0, &key).unwrap().first().map(|t| t.hash.parse().unwrap());
    wait_for("the transaction to be mined", || hash().is_some_and(|h| rpc.receipt(h).unwrap().is_some()));
    let h = hash().unwrap();
    let first_block = rpc.receipt(h).unwrap().unwrap().block_hash.unwrap();
    // Reorg: the block with the transaction leaves the chain (and the transaction with it).
    rpc.request("anvil_rollback", serde_json::json!([1])).unwrap();
    // The manager notices, broadcasts the same signed transaction again, and it is mined in a new block.
    wait_for("the re-broadcast to be mined", || {
        rpc.receipt(h).unwrap().is_some_and(|r| r.block_hash != Some(first_block))
    });
    rpc.request("anvil_mine", serde_json::json!([3])).unwrap();
    let block = handle.join().unwrap().unwrap();
    let receipt = rpc.receipt(h).unwrap().unwrap();
    assert_eq!(receipt.block_number, Some(block));
    assert_eq!(rpc.block(block).unwrap().unwrap().0, receipt.block_hash.unwrap(), "the confirmed block is canonical");
    let txs = journal.step_txs(1, 0, &key).unwrap();
    assert_eq!(txs.len(), 1, "the same transaction, never a second one");
    assert_eq!(txs[0].status, TxStatus::Mined);
    assert_eq!(view(&rpc, weth, &IERC20::balanceOfCall { owner: safe }).unwrap(), before + U256::from(10u128.pow(18)));
}

#[test]
fn a_step_that_looked_dropped_but_executed_is_never_signed_again() {
    let net = net();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let weth = net.contract("WETH");
    let key = LocalKey::from_hex(OWNER_KEY).unwrap();
    let tm = TransactionManager::new(&rpc, &key, 31337, safe, TxSettings::default()).unwrap();
    let path = net.dir.path().join("dropped.db");
    let journal = Journal::open(&path).unwrap();
    let settings = ExecSettings { poll: Duration::from_millis(20), ..ExecSettings::default() };
    let em = ExecutionManager::new(&tm, &journal, settings, &|_| {});
    let call = calls::wrap(weth, U256::from(7u8));
    let nonce0 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    em.run_step(1, 0, &call).unwrap();
    let executed = || view(&rpc, safe, &ISafe::nonceCall {}).unwrap() - nonce0;
    assert_eq!(executed(), U256::from(1u8));
    let raw = rusqlite::Connection::open(&path).unwrap();

    // A wrong "dropped" verdict (a lagging node said the nonce was used and showed no receipt): the receipt is
    // found before anything is signed.
    raw.execute("UPDATE txs SET status = 'dropped'", []).unwrap();
    em.run_step(1, 0, &call).unwrap();
    assert_eq!(executed(), U256::from(1u8));
    assert_eq!(journal.all_txs().unwrap().len(), 1);
    assert_eq!(journal.all_txs().unwrap()[0].status, TxStatus::Mined);

    // Executed under a hash the journal never saw: the Safe's ExecutionSuccess for the step's Safe transaction
    // says so, and nothing is signed.
    raw.execute("UPDATE txs SET status = 'dropped', hash = '0x' || substr('00000000000000000000000000000000000000000000000000000000000000aa', 1, 64)", [])
        .unwrap();
    let receipt = em.run_step(1, 0, &call).unwrap();
    assert!(receipt.status());
    assert_eq!(executed(), U256::from(1u8), "executed once");
    assert_eq!(journal.all_txs().unwrap().len(), 1, "nothing new was signed");

    // A step whose earlier transaction truly never executed is signed anew, once.
    let other = calls::wrap(weth, U256::from(8u8));
    em.run_step(2, 0, &other).unwrap();
    assert_eq!(executed(), U256::from(2u8));
}

/// Runs one intent through the live executor (plan, journal, sign, track, validate) as the runner does.
fn execute_intent(
    net: &Net,
    journal: &Journal,
    intent_id: i64,
    intent: &sextant_types::Intent,
) -> sextant_strategy::FlowOutcome {
    let rpc = net.rpc();
    let key = LocalKey::from_hex(OWNER_KEY).unwrap();
    let tm = TransactionManager::new(&rpc, &key, 31337, net.contract("Safe"), TxSettings::default()).unwrap();
    let settings = ExecSettings { poll: Duration::from_millis(20), ..ExecSettings::default() };
    let em = ExecutionManager::new(&tm, journal, settings, &|_| {});
    let registry = sextant_chain::Registry::built_in();
    let chain = registry.by_name("devnet").unwrap();
    let live = sextant_exec::LiveSettings {
        default_slippage_bps: 100,
        unlimited_approvals: false,
        deadline_secs: 600,
        quote_symbol: "USDC".into(),
    };
    let mut ex = sextant_exec::LiveExecutor::new(&em, chain, journal, intent_id, &live);
    sextant_strategy::run_flow(&mut ex, intent, &sextant_strategy::RetryPolicy::default())
}

#[test]
fn lp_positions_open_and_close_and_native_wraps_round_trip_through_the_safe() {
    use sextant_types::{AmountSpec, ChainId, Intent, LpPositionId, PoolRef};
    let net = net();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let (weth, usdc, npm) = (net.contract("WETH"), net.contract("USDC"), net.contract("NonfungiblePositionManager"));
    let bal = |t| view(&rpc, t, &IERC20::balanceOfCall { owner: safe }).unwrap();
    let journal = Journal::open(&net.dir.path().join("lp.db")).unwrap();
    let (weth0, usdc0) = (bal(weth), bal(usdc));

    // Open a position around the price (2000 USDC per WETH is tick -200311 with WETH as token0).
    let pool = PoolRef {
        chain: ChainId::DEVNET,
        address: net.devnet.contracts["pool_WETH_USDC_3000"].clone(),
        fee_pips: 3000,
    };
    let open = Intent::LpOpen {
        pool,
        tick_lower: -201_000,
        tick_upper: -199_980,
        amount0: sextant_types::Amount(10u128.pow(18)),
        amount1: sextant_types::Amount(2_000 * 10u128.pow(6)),
    };
    let out = execute_intent(&net, &journal, 1, &open);
    assert!(matches!(out.status, sextant_strategy::FlowStatus::Completed { .. }), "{:?}", out.status);
    // The position NFT went to the Safe: its id is in the mint's Transfer event.
    let txs = journal.all_txs().unwrap();
    let labels: Vec<&str> = txs.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels[2], "mint position [-201000, -199980]", "{labels:?}");
    assert!(labels[3].starts_with("revoke the leftover"), "what the mint did not take is unapproved: {labels:?}");
    let mint = txs[2].clone();
    let receipt = rpc.receipt(mint.hash.parse().unwrap()).unwrap().unwrap();
    let nft = receipt
        .inner
        .logs()
        .iter()
        .find(|l| l.address() == npm && l.topics().len() == 4)
        .expect("an ERC-721 Transfer of the position");
    assert_eq!(Address::from_word(nft.topics()[2]), safe, "the position belongs to the Safe");
    let token_id = U256::from_be_bytes(nft.topics()[3].0);
    let (weth1, usdc1) = (bal(weth), bal(usdc));
    assert!(weth1 < weth0 && usdc1 < usdc0, "both tokens went into the position");
    // Exact approvals: nothing is left approved to the position manager.
    for t in [weth, usdc] {
        assert_eq!(view(&rpc, t, &IERC20::allowanceCall { owner: safe, spender: npm }).unwrap(), U256::ZERO);
    }

    // Close it: liquidity removed, everything collected to the Safe, the NFT burned.
    let close = Intent::LpClose { position: LpPositionId(token_id.to_string()) };
    let out = execute_intent(&net, &journal, 2, &close);
    assert!(matches!(out.status, sextant_strategy::FlowStatus::Completed { .. }), "{:?}", out.status);
    let (weth2, usdc2) = (bal(weth), bal(usdc));
    // Back to where it started, but for the pool's rounding in its own favour (a few base units).
    assert!(weth0 - weth2 <= U256::from(2u8) && usdc0 - usdc2 <= U256::from(2u8), "{weth0} {weth2} {usdc0} {usdc2}");
    let gone = rpc.call(
        &sextant_chain::alloy::rpc::types::TransactionRequest::default().to(npm).input(
            sextant_chain::alloy::primitives::Bytes::from(sextant_chain::alloy::sol_types::SolCall::abi_encode(
                &sextant_chain::bindings::INonfungiblePositionManager::positionsCall { tokenId: token_id },
            ))
            .into(),
        ),
    );
    assert!(gone.unwrap_err().to_string().contains("Invalid token ID"), "the position NFT is burned");

    // Wrap 1 ETH of the Safe's and unwrap it all back.
    let eth0 = rpc.balance(safe).unwrap();
    let one = 10u128.pow(18);
    let out =
        execute_intent(&net, &journal, 3, &Intent::Wrap { chain: ChainId::DEVNET, amount: sextant_types::Amount(one) });
    assert!(matches!(out.status, sextant_strategy::FlowStatus::Completed { .. }), "{:?}", out.status);
    assert_eq!(bal(weth), weth2 + U256::from(one));
    // Unwrapping from a Safe cannot work with WETH9 (its 2300-gas transfer): refused plainly, nothing signed.
    let signed = journal.all_txs().unwrap().len();
    let out = execute_intent(&net, &journal, 4, &Intent::Unwrap { chain: ChainId::DEVNET, amount: AmountSpec::All });
    let sextant_strategy::FlowStatus::Failed { error } = &out.status else { panic!("{:?}", out.status) };
    assert_eq!(error.kind, sextant_strategy::ExecErrorKind::Unsupported);
    assert!(error.message.contains("2300-gas transfer"), "{}", error.message);
    assert_eq!(journal.all_txs().unwrap().len(), signed);
    assert_eq!(rpc.balance(safe).unwrap(), eth0 - U256::from(one));
}
