//! The AccountManager: keys live encrypted in Web3 Secret Storage keystore files (scrypt, the format geth and
//! alloy's local signer read), one `<name>.json` per key in a keystore directory; a key is never printed or logged.
//! Signing goes through the [`Signer`] role, so a remote signer (KMS, HSM) can stand in for a local key.

use crate::{Error, Result};
use alloy_primitives::B256;
use alloy_signer::SignerSync;
use alloy_signer_local::{LocalSignerError, PrivateKeySigner};
use std::path::{Path, PathBuf};

/// Something that holds a key and signs 32-byte hashes with it.
pub trait Signer {
    /// The address of the key, checksummed `0x`-hex.
    fn address(&self) -> String;

    /// Signs a 32-byte hash; returns `r || s || v` with `v` 27 or 28, as Safe and `ecrecover` take it.
    ///
    /// # Errors
    /// When the signer cannot sign (a remote signer unreachable, say).
    fn sign_hash(&self, hash: &[u8; 32]) -> Result<[u8; 65]>;
}

/// A key unlocked from a keystore file, held in memory.
pub struct LocalKey {
    signer: PrivateKeySigner,
}

impl std::fmt::Debug for LocalKey {
    // Never the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").field("address", &self.address()).finish_non_exhaustive()
    }
}

impl Signer for LocalKey {
    fn address(&self) -> String {
        self.signer.address().to_checksum(None)
    }

    fn sign_hash(&self, hash: &[u8; 32]) -> Result<[u8; 65]> {
        let sig = self.signer.sign_hash_sync(&B256::from(*hash)).map_err(|e| Error::Signing(e.to_string()))?;
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
        out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
        out[64] = 27 + u8::from(sig.v());
        Ok(out)
    }
}

impl LocalKey {
    /// Decrypts a keystore file (`--keystore FILE`) with `password`.
    ///
    /// # Errors
    /// A missing or unreadable file, or a wrong password (said plainly).
    pub fn unlock_file(path: &Path, password: &str) -> Result<LocalKey> {
        if !path.is_file() {
            return Err(keystore_err(path, "no such keystore file"));
        }
        let signer = PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| match e {
            LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch) => {
                Error::WrongPassword(path.display().to_string())
            }
            e => keystore_err(path, e),
        })?;
        Ok(LocalKey { signer })
    }

    /// A key from its `0x`-hex private key, held in memory only: for the devnet's public test keys and tests.
    ///
    /// # Errors
    /// When the text is not a valid private key (the text is never echoed).
    pub fn from_hex(private_key_hex: &str) -> Result<LocalKey> {
        let signer: PrivateKeySigner = private_key_hex
            .trim()
            .parse()
            .map_err(|_| Error::Invalid("a private key is 32 bytes of hex (64 digits, optionally 0x)".into()))?;
        Ok(LocalKey { signer })
    }
}

/// A key as listed: its name, address and file. The address is read from the file without decrypting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key name (the file stem).
    pub name: String,
    /// Checksummed address.
    pub address: String,
    /// The keystore file.
    pub path: PathBuf,
}

/// A directory of keystore files.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// The keystore in `dir` (created on the first new or imported key).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Keystore { dir: dir.into() }
    }

    /// The keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::Invalid(format!("key names are 1-64 letters, digits, '-' or '_', got {name:?}")));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    fn prepare(&self, name: &str, password: &str) -> Result<PathBuf> {
        if password.is_empty() {
            return Err(Error::Invalid("the password must not be empty".into()));
        }
        let path = self.path(name)?;
        if path.exists() {
            return Err(Error::KeyExists { name: name.into(), dir: self.dir.display().to_string() });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| keystore_err(&self.dir, e))?;
        Ok(path)
    }

    /// Creates a new random key, encrypted with `password`, as `<name>.json`.
    ///
    /// # Errors
    /// An invalid name, an empty password, a name already taken, or a file that cannot be written.
    pub fn create(&self, name: &str, password: &str) -> Result<KeyInfo> {
        let path = self.prepare(name, password)?;
        let file = format!("{name}.json");
        let (signer, _) = PrivateKeySigner::new_keystore(&self.dir, &mut rand::thread_rng(), password, Some(&file))
            .map_err(|e| keystore_err(&path, e))?;
        self.finish(name, path, &signer)
    }

    /// Imports a private key (`0x`-hex, 32 bytes) encrypted with `password` as `<name>.json`.
    ///
    /// # Errors
    /// As [`Keystore::create`], or a malformed private key (whose text is never echoed).
    pub fn import(&self, name: &str, private_key_hex: &str, password: &str) -> Result<KeyInfo> {
        let raw = private_key_hex.trim().trim_start_matches("0x");
        let bytes: Vec<u8> = (0..raw.len())
            .step_by(2)
            .map(|i| raw.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()
            .filter(|b: &Vec<u8>| b.len() == 32)
            .ok_or_else(|| Error::Invalid("a private key is 32 bytes of hex (64 digits, optionally 0x)".into()))?;
        let path = self.prepare(name, password)?;
        let file = format!("{name}.json");
        let (signer, _) =
            PrivateKeySigner::encrypt_keystore(&self.dir, &mut rand::thread_rng(), &bytes, password, Some(&file))
                .map_err(|e| match e {
                    LocalSignerError::EcdsaError(_) => {
                        Error::Invalid("that is not a valid secp256k1 private key".into())
                    }
                    e => keystore_err(&path, e),
                })?;
        self.finish(name, path, &signer)
    }

    /// Adds the address to the file (as geth does) so listing needs no password.
    fn finish(&self, name: &str, path: PathBuf, signer: &PrivateKeySigner) -> Result<KeyInfo> {
        let text = std::fs::read_to_string(&path).map_err(|e| keystore_err(&path, e))?;
        let mut json: serde_json::Value = serde_json::from_str(&text).map_err(|e| keystore_err(&path, e))?;
        let address = signer.address();
        json["address"] = serde_json::Value::String(format!("{address:x}").trim_start_matches("0x").to_string());
        std::fs::write(&path, json.to_string()).map_err(|e| keystore_err(&path, e))?;
        Ok(KeyInfo { name: name.into(), address: address.to_checksum(None), path })
    }

    /// The keys in the directory, by name.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(keystore_err(&self.dir, e)),
        };
        let mut keys: Vec<KeyInfo> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|path| {
                let name = path.file_stem()?.to_str()?.to_string();
                let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
                json.get("crypto").or_else(|| json.get("Crypto"))?;
                let address = json["address"].as_str().map(checksum).unwrap_or_else(|| "(address not recorded)".into());
                Some(KeyInfo { name, address, path })
            })
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// The address of key `name`, without decrypting it.
    ///
    /// # Errors
    /// When there is no such key.
    pub fn address(&self, name: &str) -> Result<String> {
        let path = self.path(name)?;
        self.list()?
            .into_iter()
            .find(|k| k.path == path)
            .map(|k| k.address)
            .ok_or_else(|| Error::NoSuchKey { name: name.into(), dir: self.dir.display().to_string() })
    }

    /// Decrypts key `name` with `password`.
    ///
    /// # Errors
    /// No such key, or a wrong password.
    pub fn unlock(&self, name: &str, password: &str) -> Result<LocalKey> {
        let path = self.path(name)?;
        if !path.exists() {
            return Err(Error::NoSuchKey { name: name.into(), dir: self.dir.display().to_string() });
        }
        let signer = PrivateKeySigner::decrypt_keystore(&path, password).map_err(|e| match e {
            LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch) => {
                Error::WrongPassword(name.into())
            }
            e => keystore_err(&path, e),
        })?;
        Ok(LocalKey { signer })
    }
}

fn checksum(hex: &str) -> String {
    let raw = hex.trim_start_matches("0x");
    raw.parse::<alloy_primitives::Address>().map_or_else(|_| format!("0x{raw}"), |a| a.to_checksum(None))
}

fn keystore_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Keystore { path: path.display().to_string(), message: e.to_string() }
}
