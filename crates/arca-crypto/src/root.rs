//! The root of the key hierarchy: loading the root key (key file with checked permissions,
//! `ARCA_ROOT_KEY`, or ephemeral for dev mode), creating key files, and the three things the
//! root key is used for — wrapping KEKs, sealing small secrets at rest, and deriving the digest key.
//!
//! The raw root key is never kept: on load it is expanded with HKDF-SHA256 into independent,
//! domain-separated subkeys (KEK wrapping, blob sealing, value digests) and then wiped, so a bug
//! in one use cannot turn into an oracle for another.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use arca_types::SecretBytes;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::aead::{
    encode_fields, encoded_len, fill_random, open_key_into, open_to_vec, seal_into, Cipher,
    KEY_LEN, NONCE_LEN, SEALED_KEY_LEN, TAG_LEN,
};
use crate::{CryptoError, DigestKey, Kek};

/// HKDF salt: fixes the derivation to this scheme and version.
const HKDF_SALT: &[u8] = b"arca/v1/root-key";
const INFO_KEK_WRAP: &[u8] = b"arca/v1/subkey/kek-wrap";
const INFO_BLOB: &[u8] = b"arca/v1/subkey/blob";
const INFO_DIGEST: &[u8] = b"arca/v1/subkey/value-digest";
/// AAD labels, first field of the length-prefixed AAD.
const AAD_KEK: &[u8] = b"arca/v1/kek";
const AAD_BLOB: &[u8] = b"arca/v1/blob";

/// First byte of a wrapped KEK and of a sealed blob, so the format can evolve.
///
/// Wrapped KEK (61 bytes): `0x01 | nonce (12) | AES-256-GCM(kek) (32) | tag (16)`,
/// AAD = fields("arca/v1/kek", key_id), key = HKDF(root, "kek-wrap").
/// Sealed blob: `0x01 | nonce (12) | ciphertext (n) | tag (16)`,
/// AAD = fields("arca/v1/blob", purpose), key = HKDF(root, "blob").
const FORMAT_V1: u8 = 1;
const WRAPPED_KEK_LEN: usize = 1 + SEALED_KEY_LEN;

/// A key file holds ~45 bytes; anything much larger is not a key file (and is not read whole).
const MAX_KEY_FILE_LEN: usize = 4096;

/// The root key. Holds only derived subkeys (AES key schedules and the digest key), boxed so
/// moves do not copy them, zeroized on drop; prints as `RootKey([redacted])`.
pub struct RootKey(Box<Subkeys>);

struct Subkeys {
    kek_wrap: Cipher,
    blob: Cipher,
    digest: Zeroizing<[u8; KEY_LEN]>,
}

impl RootKey {
    fn from_bytes(root: &[u8; KEY_LEN]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), root);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        let derive = |info: &[u8], okm: &mut [u8; KEY_LEN]| {
            // Not input-dependent: HKDF-SHA256 can emit up to 8160 bytes; we ask for 32.
            hk.expand(info, okm)
                .expect("32 bytes is a valid HKDF-SHA256 length");
        };
        derive(INFO_KEK_WRAP, &mut okm);
        let kek_wrap = Cipher::new(&okm);
        derive(INFO_BLOB, &mut okm);
        let blob = Cipher::new(&okm);
        let mut digest = Zeroizing::new([0u8; KEY_LEN]);
        derive(INFO_DIGEST, &mut digest);
        Self(Box::new(Subkeys {
            kek_wrap,
            blob,
            digest,
        }))
    }

    /// A random root key that lives only as long as the process (dev mode). Everything sealed
    /// under it is unreadable after a restart; the caller must warn loudly.
    pub fn generate_ephemeral() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..]);
        Self::from_bytes(&k)
    }

    /// Root key from text such as the `ARCA_ROOT_KEY` environment variable: standard base64 (or
    /// 64 hex digits) of 32 bytes, surrounding whitespace ignored.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let k = decode_key(s).map_err(CryptoError::InvalidKey)?;
        Ok(Self::from_bytes(&k))
    }

    /// Loads the root key from a key file written by [`RootKey::generate_file`] (or by hand:
    /// base64 or hex of 32 bytes, trailing newline allowed). On unix the file must not be
    /// accessible by group or others (mode & 0o077 == 0); it is checked on the opened handle, so
    /// the file checked is the file read.
    pub fn from_file(path: &Path) -> Result<Self, CryptoError> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| CryptoError::KeyFile(format!("{shown}: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| CryptoError::KeyFile(format!("{shown}: {e}")))?;
        if !meta.is_file() {
            return Err(CryptoError::KeyFile(format!("{shown}: not a regular file")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyFile(format!(
                    "{shown}: mode {mode:04o} lets group or others read the root key; \
                     run `chmod 600 {shown}`"
                )));
            }
        }
        // Capacity reserved up front so reading never reallocates and strands a copy of the key.
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
        file.take(MAX_KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CryptoError::KeyFile(format!("{shown}: {e}")))?;
        if buf.len() > MAX_KEY_FILE_LEN {
            return Err(CryptoError::KeyFile(format!(
                "{shown}: larger than {MAX_KEY_FILE_LEN} bytes; expected base64 of 32 bytes"
            )));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| {
            CryptoError::KeyFile(format!("{shown}: not text; expected base64 of 32 bytes"))
        })?;
        let k = decode_key(text).map_err(|m| CryptoError::KeyFile(format!("{shown}: {m}")))?;
        Ok(Self::from_bytes(&k))
    }

    /// Creates a new key file holding base64 of 32 fresh random bytes and a newline, with mode
    /// 0600 on unix (set at creation, never widened). Refuses to overwrite an existing file:
    /// losing a root key loses every secret sealed under it.
    pub fn generate_file(path: &Path) -> Result<(), CryptoError> {
        let shown = path.display();
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..]);
        // 44 base64 characters + newline; capacity fixed so the String never reallocates.
        let mut text = Zeroizing::new(String::with_capacity(45));
        base64::engine::general_purpose::STANDARD.encode_string(&k[..], &mut text);
        text.push('\n');

        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                CryptoError::KeyFile(format!(
                    "{shown}: already exists; refusing to overwrite a root key file"
                ))
            } else {
                CryptoError::KeyFile(format!("{shown}: cannot create: {e}"))
            }
        })?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            // We created this file a moment ago; a half-written key file must not be used later.
            let _ = std::fs::remove_file(path);
            return Err(CryptoError::KeyFile(format!("{shown}: cannot write: {e}")));
        }
        Ok(())
    }

    /// Wraps a KEK for storage: `0x01 | nonce | AES-256-GCM(kek) | tag` with the key id bound as
    /// AAD, so a wrapped KEK cannot be passed off as another key id's.
    pub fn wrap_kek(&self, key_id: &str, kek: &Kek) -> Vec<u8> {
        let aad = fields(&[AAD_KEK, key_id.as_bytes()]);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(WRAPPED_KEK_LEN);
        out.push(FORMAT_V1);
        // Not input-dependent: a 32-byte message is far below AES-GCM's limit.
        seal_into(&self.0.kek_wrap, &nonce, &aad, kek.bytes(), &mut out)
            .expect("a 32-byte key is within AES-GCM limits");
        out
    }

    /// Unwraps a KEK made by [`RootKey::wrap_kek`] under the same key id. A different root
    /// key, key id, or any changed byte gives [`CryptoError::Decrypt`]; a blob of the wrong
    /// shape gives [`CryptoError::Malformed`].
    pub fn unwrap_kek(&self, key_id: &str, wrapped: &[u8]) -> Result<Kek, CryptoError> {
        let rest = match wrapped.split_first() {
            Some((&FORMAT_V1, rest)) if wrapped.len() == WRAPPED_KEK_LEN => rest,
            _ => return Err(CryptoError::Malformed),
        };
        let aad = fields(&[AAD_KEK, key_id.as_bytes()]);
        let mut kek = Kek::empty();
        open_key_into(&self.0.kek_wrap, &aad, rest, kek.bytes_mut())?;
        Ok(kek)
    }

    /// Seals a small secret for storage (e.g. a SigV4 secret access key) with `purpose` bound as
    /// AAD; the caller should make `purpose` name the record (e.g. `"access-key:AKIA…"`), so
    /// sealed blobs cannot be swapped between records.
    ///
    /// # Panics
    /// If `plaintext` exceeds AES-GCM's per-message limit (about 64 GiB).
    pub fn seal_blob(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let aad = fields(&[AAD_BLOB, purpose.as_bytes()]);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V1);
        seal_into(&self.0.blob, &nonce, &aad, plaintext, &mut out)
            .expect("small secrets are within AES-GCM limits");
        out
    }

    /// Opens a blob made by [`RootKey::seal_blob`] with the same `purpose`.
    pub fn open_blob(&self, purpose: &str, sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        let rest = match sealed.split_first() {
            Some((&FORMAT_V1, rest)) => rest,
            _ => return Err(CryptoError::Malformed),
        };
        let aad = fields(&[AAD_BLOB, purpose.as_bytes()]);
        let mut plain = open_to_vec(&self.0.blob, &aad, rest)?;
        Ok(SecretBytes::new(std::mem::take(&mut *plain)))
    }

    /// The value-digest key, derived from the root key (HKDF, its own label), so digests differ
    /// between deployments and cannot be computed by anyone without the root key.
    pub fn digest_key(&self) -> DigestKey {
        DigestKey::from_bytes(&self.0.digest)
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([redacted])")
    }
}

fn fields(f: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(encoded_len(f));
    encode_fields(&mut v, f);
    v
}

/// Longest accepted key text: 64 hex digits (base64 of 32 bytes is 44 characters).
const MAX_KEY_TEXT: usize = 64;

/// Decodes base64 (standard alphabet, padded) or 64 hex digits into exactly 32 bytes.
/// Error messages give lengths only: never the text, and never the decoder's own message,
/// which can quote an offending input byte.
fn decode_key(s: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    const EXPECTED: &str = "expected base64 (44 characters) or hex (64 digits) of 32 bytes";
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty; {EXPECTED}"));
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode_to_slice(t, &mut out[..]).map_err(|_| format!("not valid hex; {EXPECTED}"))?;
        return Ok(out);
    }
    if t.len() > MAX_KEY_TEXT {
        return Err(format!("{} characters; {EXPECTED}", t.len()));
    }
    // 64 base64 characters decode to at most 48 bytes.
    let mut buf = Zeroizing::new([0u8; 48]);
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(t, &mut buf[..])
        .map_err(|_| format!("not valid base64 or hex; {EXPECTED}"))?;
    if n != KEY_LEN {
        buf.zeroize();
        return Err(format!("decodes to {n} bytes; {EXPECTED}"));
    }
    out.copy_from_slice(&buf[..KEY_LEN]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    fn write_with_mode(p: &Path, content: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(p, content).expect("write");
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// A key file's content must not appear in any error: not whole, and not a 6-char slice.
    fn assert_no_material(msg: &str, content: &str) {
        let c = content.trim();
        if c.is_empty() {
            return;
        }
        assert!(!msg.contains(c), "{msg}");
        for w in c.as_bytes().windows(6) {
            let w = std::str::from_utf8(w).expect("ascii");
            assert!(!msg.contains(w), "message {msg:?} quotes key text {w:?}");
        }
    }

    #[test]
    fn generated_key_file_is_0600_and_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        RootKey::generate_file(&p).expect("generate");
        assert_eq!(mode_of(&p), 0o600);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.ends_with('\n'));
        assert_eq!(STANDARD.decode(text.trim()).expect("base64").len(), 32);
        let a = RootKey::from_file(&p).expect("load");
        let b = RootKey::from_base64(&text).expect("same key via env form");
        // Same key material gives the same subkeys.
        let kek = Kek::generate();
        let w = a.wrap_kek("k", &kek);
        assert_eq!(b.unwrap_kek("k", &w).expect("unwrap").bytes(), kek.bytes());
    }

    #[test]
    fn generate_file_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        RootKey::generate_file(&p).expect("generate");
        let before = std::fs::read(&p).expect("read");
        let err = RootKey::generate_file(&p).expect_err("must refuse");
        assert!(matches!(&err, CryptoError::KeyFile(m) if m.contains("already exists")));
        assert_eq!(std::fs::read(&p).expect("read"), before);
        assert_no_material(&err.to_string(), &String::from_utf8(before).expect("utf8"));
    }

    #[test]
    fn group_or_world_readable_key_file_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        let content = format!("{}\n", STANDARD.encode([7u8; 32]));
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            write_with_mode(&p, &content, mode);
            let err = RootKey::from_file(&p).expect_err("must reject");
            let msg = err.to_string();
            assert!(matches!(err, CryptoError::KeyFile(_)));
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert_no_material(&msg, &content);
        }
        for mode in [0o600, 0o400] {
            write_with_mode(&p, &content, mode);
            RootKey::from_file(&p).expect("owner-only is accepted");
        }
    }

    #[test]
    fn wrong_length_or_garbage_key_text_is_rejected_without_echoing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        let cases = [
            STANDARD.encode([9u8; 31]),
            STANDARD.encode([9u8; 33]),
            STANDARD.encode([9u8; 16]),
            hex::encode([0xabu8; 31]),
            // Invalid base64 symbol in the middle: base64's own error would quote it.
            format!(
                "{}-{}",
                &STANDARD.encode([5u8; 32])[..20],
                &STANDARD.encode([5u8; 32])[21..]
            ),
            "x".repeat(5000),
            String::new(),
        ];
        for content in &cases {
            write_with_mode(&p, content, 0o600);
            let err = RootKey::from_file(&p).expect_err("must reject");
            assert!(matches!(err, CryptoError::KeyFile(_)), "{err}");
            assert_no_material(&err.to_string(), content);
            if content.len() < 100 {
                let err = RootKey::from_base64(content).expect_err("must reject");
                assert!(matches!(err, CryptoError::InvalidKey(_)), "{err}");
                assert_no_material(&err.to_string(), content);
            }
        }
    }

    #[test]
    fn hex_and_base64_of_the_same_key_agree() {
        let raw = [0x42u8; 32];
        let a = RootKey::from_base64(&STANDARD.encode(raw)).expect("base64");
        let b = RootKey::from_base64(&format!("  {}\r\n", hex::encode(raw))).expect("hex");
        let sealed = a.seal_blob("p", b"x");
        assert_eq!(b.open_blob("p", &sealed).expect("open").expose(), b"x");
    }

    #[test]
    fn missing_key_file_is_a_key_file_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = RootKey::from_file(&dir.path().join("absent")).expect_err("missing");
        assert!(matches!(err, CryptoError::KeyFile(_)));
        let err = RootKey::from_file(dir.path()).expect_err("a directory");
        assert!(matches!(err, CryptoError::KeyFile(_)));
    }

    #[test]
    fn kek_wrap_round_trip_and_binding() {
        let root = RootKey::generate_ephemeral();
        let kek = Kek::generate();
        let w = root.wrap_kek("customer-1", &kek);
        assert_eq!(w.len(), WRAPPED_KEK_LEN);
        assert_eq!(
            root.unwrap_kek("customer-1", &w).expect("unwrap").bytes(),
            kek.bytes()
        );
        assert_ne!(root.wrap_kek("customer-1", &kek), w, "fresh nonce per wrap");
        assert_eq!(
            root.unwrap_kek("customer-2", &w).map(|_| ()),
            Err(CryptoError::Decrypt)
        );
        let other_root = RootKey::generate_ephemeral();
        assert_eq!(
            other_root.unwrap_kek("customer-1", &w).map(|_| ()),
            Err(CryptoError::Decrypt)
        );
        for i in 0..w.len() {
            let mut t = w.clone();
            t[i] ^= 1;
            assert!(root.unwrap_kek("customer-1", &t).is_err(), "byte {i}");
        }
        assert_eq!(
            root.unwrap_kek("customer-1", &w[..60]).map(|_| ()),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn blob_round_trip_and_purpose_binding() {
        let root = RootKey::generate_ephemeral();
        let s = root.seal_blob("access-key:AKIA1", b"wJalrXUtnFEMI");
        assert_eq!(
            root.open_blob("access-key:AKIA1", &s)
                .expect("open")
                .expose(),
            b"wJalrXUtnFEMI"
        );
        assert_eq!(
            root.open_blob("access-key:AKIA2", &s),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            root.open_blob("access-key:AKIA1", &s[..10]),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            root.open_blob("access-key:AKIA1", &[]),
            Err(CryptoError::Malformed)
        );
        let mut t = s.clone();
        t[5] ^= 1;
        assert_eq!(
            root.open_blob("access-key:AKIA1", &t),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn blobs_and_wrapped_keks_are_not_interchangeable() {
        // Separate subkeys and AAD labels: a 32-byte blob cannot be unwrapped as a KEK.
        let root = RootKey::generate_ephemeral();
        let kek = Kek::generate();
        let blob = root.seal_blob("k", kek.bytes());
        assert_eq!(blob.len(), WRAPPED_KEK_LEN);
        assert_eq!(
            root.unwrap_kek("k", &blob).map(|_| ()),
            Err(CryptoError::Decrypt)
        );
        let w = root.wrap_kek("k", &kek);
        assert_eq!(root.open_blob("k", &w), Err(CryptoError::Decrypt));
    }

    #[test]
    fn debug_of_keys_shows_no_key_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        RootKey::generate_file(&p).expect("generate");
        let text = std::fs::read_to_string(&p).expect("read");
        let raw = STANDARD.decode(text.trim()).expect("base64");
        let root = RootKey::from_file(&p).expect("load");
        let digest = root.digest_key();
        let kek = Kek::generate();
        for dbg in [
            format!("{root:?}"),
            format!("{digest:?}"),
            format!("{kek:?}"),
        ] {
            assert!(dbg.contains("[redacted]"), "{dbg}");
            assert!(!dbg.contains(text.trim()));
            assert!(!dbg.contains(&hex::encode(&raw)));
            assert!(!dbg.contains(&hex::encode(kek.bytes())));
            assert!(!dbg.contains(&STANDARD.encode(kek.bytes())));
        }
        assert_eq!(format!("{kek:?}"), "[redacted]");
        // Pretty-printing takes another path through fmt; it must redact too.
        assert!(!format!("{root:#?}").contains(text.trim()));
    }
}
