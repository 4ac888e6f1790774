//! Node signing keys (Ed25519), their ids, and their files (PKCS#8 PEM, mode 0600). A key id
//! is `"ed25519:"` plus the lower-case, unpadded RFC 4648 base32 of the public key's first 8
//! bytes (13 characters); a public key as text is the standard padded base64 of its 32 bytes.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Prefix of every key id.
pub const KEY_ID_PREFIX: &str = "ed25519:";

/// RFC 4648 base32 alphabet, lower case.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// How much of a key file is read at most (a real one has about 120 bytes).
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Lower-case RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    let bit = |i: usize| bytes.get(i / 8).map_or(0, |b| (b >> (7 - i % 8)) & 1);
    let index = |c: usize| (0..5).fold(0, |acc, k| (acc << 1) | usize::from(bit(c * 5 + k)));
    let chars = (bytes.len() * 8).div_ceil(5);
    let char_at = |i: usize| BASE32.get(i).map(|&b| char::from(b));
    (0..chars).filter_map(|c| char_at(index(c))).collect()
}

/// The id of a node key, e.g. `ed25519:5jfgyy7ctrjau`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(String);

impl KeyId {
    /// The id of a public key.
    #[must_use]
    pub fn of(public: &VerifyingKey) -> Self {
        let head = public.as_bytes().get(..8).unwrap_or_default();
        Self(format!("{KEY_ID_PREFIX}{}", base32(head)))
    }

    /// Parses a key id, refusing a wrong prefix, length or alphabet, and a last character
    /// whose unused 65th bit is set (so that every id has exactly one spelling).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let valid = s.strip_prefix(KEY_ID_PREFIX).is_some_and(|body| {
            body.len() == 13
                && body.bytes().all(|b| BASE32.contains(&b))
                && body.ends_with(|c| "acegikmoqsuwy246".contains(c))
        });
        valid
            .then(|| Self(s.to_owned()))
            .ok_or_else(|| KeyError::BadId(s.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key, a key file or a key id was refused. `path` is the key file as displayed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    /// The key file could not be written.
    #[error("cannot write key file {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    /// The key file grants some permission to group or others (`mode`: its permission bits).
    #[error("key file {path} is readable by group or others (mode {mode:o}); run chmod 600 {path}")]
    Permissions { path: String, mode: u32 },
    /// The key file does not hold an Ed25519 PKCS#8 PEM key.
    #[error("key file {path} is not an Ed25519 PKCS#8 PEM key: {cause}")]
    Format { path: String, cause: String },
    /// Saving would have overwritten an existing file.
    #[error("key file {path} already exists")]
    Exists { path: String },
    /// Not a well-formed key id.
    #[error("invalid key id {0:?}")]
    BadId(String),
    /// Not a well-formed public key text.
    #[error("invalid public key: {0}")]
    BadPublicKey(String),
    /// 32 bytes that decode to a curve point no key made from a secret has.
    #[error("unsafe public key: {0}")]
    Unsafe(#[from] UnsafeKey),
}

/// Why the 32 bytes of a public key are refused although they decode to a point of the curve.
/// Every key made from a secret (`[a]B`) is the canonical encoding of a point of the
/// prime-order subgroup other than the identity; anything else is refused wherever a public key
/// is read (pinning, the keyring in the database, an operator's pin), so that no signature check
/// ever meets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeKey {
    /// A second spelling of a point (an unreduced y coordinate, or the sign bit set on x = 0):
    /// the key id, taken from the bytes, would not name the point once.
    #[error("not the canonical encoding of its point")]
    NonCanonical,
    /// A point of small order (the identity among them): with such a key, signatures made
    /// without any secret pass a non-strict check.
    #[error("a point of small order")]
    SmallOrder,
    /// A point with a torsion component (outside the prime-order subgroup).
    #[error("a point outside the prime-order subgroup")]
    Torsion,
}

/// A node's signing key (never printed: Debug shows only the key id).
pub struct NodeKey {
    id: KeyId,
    key: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("id", &self.id).finish()
    }
}

impl NodeKey {
    /// A new random key, from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Wraps an existing signing key (tests and fixtures).
    #[must_use]
    pub fn from_signing_key(key: SigningKey) -> Self {
        let id = KeyId::of(&key.verifying_key());
        Self { id, key }
    }

    /// The key's id.
    #[must_use]
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The public half of the key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs a message.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// Writes the key as PKCS#8 PEM to `path`, created with mode 0600 (refuses to overwrite:
    /// `Exists`). A file left half written by a failed write is removed.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let shown = path.display().to_string();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let mut file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists { path: shown });
            }
            Err(cause) => return Err(KeyError::Write { path: shown, cause }),
        };
        let pem = self.key.to_pkcs8_pem(LineEnding::LF);
        let pem = pem.map_err(|e| std::io::Error::other(e.to_string()));
        let written = pem.and_then(|pem| file.write_all(pem.as_bytes()));
        if let Err(cause) = written.and_then(|()| file.sync_all()) {
            drop(file);
            // Best effort: the write error is the one worth reporting.
            let _ = std::fs::remove_file(path);
            return Err(KeyError::Write { path: shown, cause });
        }
        Ok(())
    }

    /// Loads a key, refusing a file whose mode grants any permission to group or others.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let mut pem = Zeroizing::new(String::with_capacity(1024));
        let mut read = || -> std::io::Result<u32> {
            let file = File::open(path)?;
            let mode = file.metadata()?.permissions().mode() & 0o7777;
            if mode & 0o077 == 0 {
                file.take(MAX_KEY_FILE).read_to_string(&mut pem)?;
            }
            Ok(mode)
        };
        let mode = match read() {
            Ok(mode) => mode,
            Err(cause) => return Err(KeyError::Read { path: shown, cause }),
        };
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: shown, mode });
        }
        let format = |cause| KeyError::Format { path: shown, cause };
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| e.to_string());
        key.map(Self::from_signing_key).map_err(format)
    }
}

/// Creates `dir` (and its parents) for the owner only (mode 0700, whatever the umask), when it
/// does not exist yet.
///
/// # Errors
///
/// The directory could not be created.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Public key as text: standard padded base64 of its 32 bytes.
#[must_use]
pub fn public_key_text(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Parses a public key written by [`public_key_text`], refusing unsafe ones
/// ([`public_key_from_bytes`]).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bad = KeyError::BadPublicKey;
    let bytes = STANDARD.decode(text).map_err(|e| bad(e.to_string()))?;
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|b| bad(format!("{} bytes", b.len())))?;
    public_key_from_bytes(&bytes)
}

/// The public key of these 32 bytes: refused unless they are the canonical encoding of a point
/// of the prime-order subgroup other than the identity ([`UnsafeKey`]), which is what every key
/// made from a secret is. The one place a public key is built from bytes.
pub fn public_key_from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
    let point = key.to_edwards();
    if point.compress().as_bytes() != bytes {
        return Err(UnsafeKey::NonCanonical.into());
    }
    if key.is_weak() {
        return Err(UnsafeKey::SmallOrder.into());
    }
    if !point.is_torsion_free() {
        return Err(UnsafeKey::Torsion.into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;
    use std::fs::{Permissions, metadata, read_to_string, set_permissions, write};

    fn fixed() -> NodeKey {
        NodeKey::from_signing_key(SigningKey::from_bytes(&[7u8; 32]))
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        let want = " my mzxq mzxw6 mzxw6yq mzxw6ytb mzxw6ytboi".split(' ');
        for (n, want) in want.enumerate() {
            assert_eq!(base32(&b"foobar"[..n]), want);
        }
    }

    #[test]
    fn save_load_round_trip_with_mode_0600_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::generate();
        key.save(&path).unwrap();
        assert_eq!(metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let pem = read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let loaded = NodeKey::load(&path).unwrap();
        assert_eq!(loaded.id(), key.id());
        let sig = loaded.sign(b"hello");
        assert_eq!(sig, key.sign(b"hello"));
        key.verifying_key().verify(b"hello", &sig).unwrap();
        let err = NodeKey::generate().save(&path).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert_eq!(NodeKey::load(&path).unwrap().id(), key.id());
    }

    #[test]
    fn load_refuses_open_modes_garbage_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        fixed().save(&path).unwrap();
        set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let err = NodeKey::load(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, KeyError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(text.contains("(mode 644); run chmod 600"), "{text}");
        write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
        set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        let err = NodeKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyError::Format { .. }), "{err}");
        let err = NodeKey::load(&dir.path().join("absent.key")).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
    }

    #[test]
    fn key_id_is_stable_well_formed_and_parsed_strictly() {
        let key = fixed();
        let id = key.id().as_str();
        // Cross-checked with OpenSSL (public key) and Python's base64.b32encode.
        assert_eq!(id, "ed25519:5jfgyy7ctrjau");
        let head = key.verifying_key().to_bytes();
        assert_eq!(id, format!("{KEY_ID_PREFIX}{}", base32(&head[..8])));
        assert_eq!(KeyId::parse(id).unwrap(), *key.id());
        assert_eq!(key.id().to_string(), id);
        let debug = format!("{key:?}");
        assert_eq!(debug, format!("NodeKey {{ id: KeyId({id:?}) }}"));
        // Wrong prefix, length, alphabet or case, padding, and (last) the unused bit set.
        let bad = "ED25519:5jfgyy7ctrjau x25519:5jfgyy7ctrjau 5jfgyy7ctrjau ed25519: \
            ed25519:5jfgyy7ctrja ed25519:5jfgyy7ctrjaua ed25519:5JFGYY7CTRJAU \
            ed25519:5jfgyy1ctrjau ed25519:5jfgyy7ctrjau= ed25519:5jfgyy7ctrjav";
        for bad in bad.split(' ').chain([""]) {
            let err = KeyId::parse(bad);
            assert!(matches!(err, Err(KeyError::BadId(_))), "{bad:?}");
        }
    }

    #[test]
    fn public_key_text_round_trip() {
        let public = fixed().verifying_key();
        let text = public_key_text(&public);
        // Cross-checked with OpenSSL and Python's base64 module.
        assert_eq!(text, "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=");
        assert_eq!(parse_public_key(&text).unwrap(), public);
        for bad in ["", "not base64!", "AAAA", &text[..40]] {
            let err = parse_public_key(bad);
            assert!(matches!(err, Err(KeyError::BadPublicKey(_))), "{bad:?}");
        }
    }

    /// The 32 bytes of y = 2^255 − 256 + `y_low`, sign bit clear: y = p − 1 (the point of
    /// order 2) for 0xec, the unreduced y = p + 1 (the identity) for 0xee.
    fn unreduced(y_low: u8) -> [u8; 32] {
        let mut b = [0xff; 32];
        b[0] = y_low;
        b[31] = 0x7f;
        b
    }

    #[test]
    fn small_order_non_canonical_and_torsioned_keys_are_refused() {
        let unsafe_key = |bytes: &[u8; 32]| match public_key_from_bytes(bytes) {
            Err(KeyError::Unsafe(why)) => why,
            other => panic!("{bytes:?}: {other:?}"),
        };
        // The identity (y = 1) and the point of order 2 (y = −1): small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(unsafe_key(&identity), UnsafeKey::SmallOrder);
        assert_eq!(unsafe_key(&unreduced(0xec)), UnsafeKey::SmallOrder);
        // The identity spelt with y = p + 1, or with the sign bit of x = 0 set.
        assert_eq!(unsafe_key(&unreduced(0xee)), UnsafeKey::NonCanonical);
        let mut negative_zero = identity;
        negative_zero[31] |= 0x80;
        assert_eq!(unsafe_key(&negative_zero), UnsafeKey::NonCanonical);
        // A real key plus the point of order 2: not small order, but not [a]B either.
        let order_2 = VerifyingKey::from_bytes(&unreduced(0xec))
            .unwrap()
            .to_edwards();
        let real = fixed().verifying_key();
        let mixed = (real.to_edwards() + order_2).compress().to_bytes();
        assert_eq!(unsafe_key(&mixed), UnsafeKey::Torsion);
        // The same through the text form (pinning, the database, an operator's pin).
        let err = parse_public_key(&STANDARD.encode(identity)).unwrap_err();
        assert_eq!(err.to_string(), "unsafe public key: a point of small order");
        assert_eq!(public_key_from_bytes(real.as_bytes()).unwrap(), real);
        for _ in 0..32 {
            let key = NodeKey::generate().verifying_key();
            assert_eq!(parse_public_key(&public_key_text(&key)).unwrap(), key);
        }
    }
}
