//! The AccountManager's keystores: real Web3 Secret Storage files (scrypt), as alloy and geth read them.

use sextant_exec::{Error, Keystore, Signer};

/// anvil's first default key: a public test key.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ANVIL_ADDRESS_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

#[test]
fn create_list_unlock_and_refuse_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::new(dir.path().join("keys"));
    assert!(ks.list().unwrap().is_empty());
    let made = ks.create("bot", "correct horse").unwrap();
    assert!(made.address.starts_with("0x") && made.address.len() == 42);
    assert_eq!(ks.list().unwrap(), vec![made.clone()]);
    assert_eq!(ks.address("bot").unwrap(), made.address);
    let key = ks.unlock("bot", "correct horse").unwrap();
    assert_eq!(key.address(), made.address);
    assert!(matches!(ks.unlock("bot", "wrong"), Err(Error::WrongPassword(name)) if name == "bot"));
    assert!(matches!(ks.unlock("nobody", "x"), Err(Error::NoSuchKey { .. })));
    assert!(matches!(ks.create("bot", "again"), Err(Error::KeyExists { .. })));
    assert!(matches!(ks.create("../escape", "pw"), Err(Error::Invalid(_))));
    assert!(matches!(ks.create("empty", ""), Err(Error::Invalid(_))));
    // The key never shows in its Debug form.
    assert!(!format!("{key:?}").to_lowercase().contains("private"));
}

#[test]
fn import_gives_the_known_address_and_signatures_recover_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::new(dir.path());
    let info = ks.import("anvil0", ANVIL_KEY_0, "pw").unwrap();
    assert_eq!(info.address, ANVIL_ADDRESS_0);
    let err = ks.import("bad", "0x1234", "pw").unwrap_err().to_string();
    assert!(err.contains("32 bytes") && !err.contains("1234"), "{err}");
    let zero = format!("0x{}", "0".repeat(64));
    assert!(matches!(ks.import("zero", &zero, "pw"), Err(Error::Invalid(_))));

    let key = ks.unlock("anvil0", "pw").unwrap();
    let hash = [7u8; 32];
    let sig = key.sign_hash(&hash).unwrap();
    assert!(sig[64] == 27 || sig[64] == 28);
    let parsed = alloy_primitives::Signature::from_raw(&sig).unwrap();
    let recovered = parsed.recover_address_from_prehash(&alloy_primitives::B256::from(hash)).unwrap();
    assert_eq!(recovered.to_checksum(None), ANVIL_ADDRESS_0);
}
