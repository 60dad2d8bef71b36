//! The GetSecretValue answer written by hand: the one response on the hot path, where
//! escaping the secret byte by byte was the largest cost of rendering. Output is
//! byte-for-byte what `serde_json` writes for the same `GetSecretValueResponse` (tested
//! below), and the buffer that holds the secret is wiped when the response is dropped.

use arca_core::SecretValue;
use arca_types::secret::{SecretBlob, SecretString};
#[cfg(test)]
use arca_types::wire::GetSecretValueResponse;
use bytes::Bytes;

/// The fields of a GetSecretValue answer, borrowed from wherever they live.
pub(crate) struct Answer<'a> {
    arn: &'a str,
    name: &'a str,
    version_id: &'a str,
    secret_binary: Option<&'a SecretBlob>,
    secret_string: Option<&'a SecretString>,
    version_stages: &'a [String],
    created_date: f64,
}

impl<'a> From<&'a SecretValue> for Answer<'a> {
    fn from(v: &'a SecretValue) -> Self {
        Self {
            arn: v.arn(),
            name: v.name(),
            version_id: v.version_id(),
            secret_binary: v.secret_binary(),
            secret_string: v.secret_string(),
            version_stages: v.version_stages(),
            created_date: v.created_date(),
        }
    }
}

/// For the tests, which compare with serde_json's rendering of the response struct.
#[cfg(test)]
impl<'a> From<&'a GetSecretValueResponse> for Answer<'a> {
    fn from(r: &'a GetSecretValueResponse) -> Self {
        Self {
            arn: &r.arn,
            name: &r.name,
            version_id: &r.version_id,
            secret_binary: r.secret_binary.as_ref(),
            secret_string: r.secret_string.as_ref(),
            version_stages: &r.version_stages,
            created_date: r.created_date,
        }
    }
}

/// Renders `resp` as `serde_json::to_vec` would render the same `GetSecretValueResponse`,
/// into a buffer that zeroizes on drop.
pub(crate) fn get_secret_value(resp: &Answer<'_>) -> Result<Bytes, serde_json::Error> {
    let value_len = resp.secret_string.map_or(0, |s| s.expose().len())
        + resp
            .secret_binary
            .map_or(0, |b| b.0.expose().len() * 4 / 3 + 4);
    let mut out = Vec::with_capacity(value_len + resp.arn.len() + resp.name.len() + 160);
    out.extend_from_slice(b"{\"ARN\":");
    write_str(&mut out, resp.arn);
    out.extend_from_slice(b",\"Name\":");
    write_str(&mut out, resp.name);
    out.extend_from_slice(b",\"VersionId\":");
    write_str(&mut out, resp.version_id);
    if let Some(b) = resp.secret_binary {
        out.extend_from_slice(b",\"SecretBinary\":");
        // Base64 needs no escaping; serde writes it, still into the wiped buffer.
        serde_json::to_writer(&mut out, b)?;
    }
    if let Some(s) = resp.secret_string {
        out.extend_from_slice(b",\"SecretString\":");
        write_str(&mut out, s.expose());
    }
    out.extend_from_slice(b",\"VersionStages\":[");
    for (i, stage) in resp.version_stages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, stage);
    }
    out.extend_from_slice(b"],\"CreatedDate\":");
    serde_json::to_writer(&mut out, &resp.created_date)?;
    out.push(b'}');
    Ok(wiped_on_drop(out))
}

/// A body buffer that holds secret material: zeroized when hyper drops the last reference.
pub(crate) fn wiped_on_drop(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Wiped(buf))
}

struct Wiped(Vec<u8>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        arca_types::secret::wipe_vec(&mut self.0);
    }
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes of `x` must be escaped in a JSON string: a control
/// character (< 0x20), `"` or `\`. Exact (no false negatives, no false positives).
#[inline]
fn needs_escape(x: u64) -> bool {
    escape_bits(x) != 0
}

/// Non-zero exactly when some byte of `x` must be escaped (high bits mark candidates).
#[inline]
fn escape_bits(x: u64) -> u64 {
    let zero_bytes = |v: u64| v.wrapping_sub(LOW) & !v & HIGH;
    let below_space = x.wrapping_sub(LOW * 0x20) & !x & HIGH;
    below_space | zero_bytes(x ^ (LOW * b'"' as u64)) | zero_bytes(x ^ (LOW * b'\\' as u64))
}

/// How many leading bytes of `bytes` certainly need no escaping: whole clean 32-byte
/// blocks (four words tested together, which the compiler keeps in registers), then clean
/// 8-byte words. Secrets are mostly clean, so this is nearly all of a value.
fn clean_prefix(bytes: &[u8]) -> usize {
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    let mut n = 0;
    let (blocks, _) = bytes.as_chunks::<32>();
    for b in blocks {
        let bits = escape_bits(word(&b[..8]))
            | escape_bits(word(&b[8..16]))
            | escape_bits(word(&b[16..24]))
            | escape_bits(word(&b[24..]));
        if bits != 0 {
            break;
        }
        n += 32;
    }
    let (words, _) = bytes[n..].as_chunks::<8>();
    for w in words {
        if needs_escape(u64::from_le_bytes(*w)) {
            break;
        }
        n += 8;
    }
    n
}

/// `s` as a JSON string, escaped exactly as serde_json does: `\"`, `\\`, the five short
/// escapes and `\u00xx` for other control characters; everything else verbatim.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip the clean run (most of any secret), then look at the next byte alone.
        i += clean_prefix(&bytes[i..]);
        let Some(&b) = bytes.get(i) else { break };
        let short = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            _ => None,
        };
        if short.is_some() || b < 0x20 {
            out.extend_from_slice(&bytes[clean_from..i]);
            match short {
                Some(c) => out.extend_from_slice(&[b'\\', c]),
                None => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]),
            }
            clean_from = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::secret::{SecretBlob, SecretString};
    use arca_types::SecretBytes;
    use rand::{Rng, SeedableRng};

    fn escaped(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet: Vec<char> = "ab\"\\/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} é€😀{}"
            .chars()
            .collect();
        for _ in 0..5_000 {
            let len = rng.gen_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            assert_eq!(escaped(&s), serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
        for b in 0u8..=0x7f {
            let s = format!("abcdefgh{}ijklmnop", b as char);
            assert_eq!(escaped(&s), serde_json::to_vec(&s).unwrap(), "byte {b:#x}");
        }
    }

    #[test]
    fn long_clean_runs_with_sparse_escapes() {
        // Exercises the 32-byte and 8-byte skips: an escape at every offset of a block.
        for at in 0..96 {
            for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é'] {
                let mut s: String = "x".repeat(96);
                s.replace_range(at..at + 1, &c.to_string());
                assert_eq!(
                    escaped(&s),
                    serde_json::to_vec(&s).unwrap(),
                    "{c:?} at {at}"
                );
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..2_000 {
            let len = rng.gen_range(0..300);
            let s: String = (0..len)
                .map(|_| match rng.gen_range(0..40) {
                    0 => '"',
                    1 => '\u{7}',
                    2 => '€',
                    _ => 'k',
                })
                .collect();
            assert_eq!(escaped(&s), serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn responses_render_as_serde_json_does() {
        let mut resp = GetSecretValueResponse {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbCdEf".into(),
            name: "a/b".into(),
            version_id: "7d1f1f1e-8c66-4c4e-9a43-0d2a1c2b3e4f".into(),
            secret_binary: None,
            secret_string: Some(SecretString::new(
                "{\"user\":\"u\",\"pw\":\"p\\q\"}\n".into(),
            )),
            version_stages: vec!["AWSCURRENT".into(), "custom".into()],
            created_date: 1_760_000_000.123,
        };
        assert_eq!(
            &get_secret_value(&Answer::from(&resp)).unwrap()[..],
            &serde_json::to_vec(&resp).unwrap()[..]
        );
        resp.secret_string = None;
        resp.secret_binary = Some(SecretBlob(SecretBytes::from_slice(&[0, 1, 2, 255, 254])));
        resp.version_stages.clear();
        resp.created_date = 1.5;
        assert_eq!(
            &get_secret_value(&Answer::from(&resp)).unwrap()[..],
            &serde_json::to_vec(&resp).unwrap()[..]
        );
    }
}
