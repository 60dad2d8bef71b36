//! Splitting strings on one ASCII byte. `str::split(char)` runs a memchr and then a memcmp of
//! the encoded char for every piece; on the short pieces of an Authorization header (a
//! credential, a list of header names) that overhead was most of the parse. An ASCII byte
//! never occurs inside a multi-byte UTF-8 sequence, so every split point is a char boundary
//! and the pieces are exactly those `str::split` would give.

/// `s.split(sep as char)` for an ASCII `sep`.
pub(crate) fn split_ascii(s: &str, sep: u8) -> SplitAscii<'_> {
    debug_assert!(sep.is_ascii());
    SplitAscii { rest: Some(s), sep }
}

/// `s.split_once(sep as char)` for an ASCII `sep`.
pub(crate) fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    let i = find_byte(s.as_bytes(), sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// The index of the first `needle` in `hay`, eight bytes per step (a byte-at-a-time loop
/// over a signature or credential was the parse's hot spot). In `x = word ^ needle * 0x01..`
/// a matching byte is zero, and `(x - 0x01..) & !x & 0x80..` sets the top bit of every zero
/// byte; a borrow can also set it in bytes above a zero byte, never below, so the lowest set
/// bit (little-endian: the earliest byte) is the first match.
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut offset = 0;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ pattern;
        let zero_bytes = x.wrapping_sub(LO) & !x & HI;
        if zero_bytes != 0 {
            return Some(offset + zero_bytes.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == needle).map(|i| offset + i)
}

#[derive(Debug, Clone)]
pub(crate) struct SplitAscii<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitAscii<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match split_once_ascii(s, self.sep) {
            Some((piece, rest)) => {
                self.rest = Some(rest);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_finds_the_first_match() {
        // Every position of a first match in haystacks of every length up to 40, around
        // bytes that are a borrow away from the needle (0x00, 0x01, 0x80, 0x81, needle +- 1).
        for needle in [b',', b'/', b';', 0x00, 0x01, 0x7f, 0x80, 0xff] {
            for filler in [0x00u8, 0x01, 0x80, 0x81, 0xfe, 0xff, b'a'] {
                let filler = if filler == needle {
                    needle ^ 0x40
                } else {
                    filler
                };
                for len in 0..40 {
                    let base = vec![filler; len];
                    assert_eq!(find_byte(&base, needle), None, "{needle} {filler} {len}");
                    for first in 0..len {
                        let mut hay = base.clone();
                        for (i, b) in hay.iter_mut().enumerate().skip(first) {
                            if (i - first) % 3 == 0 {
                                *b = needle;
                            }
                        }
                        let want = hay.iter().position(|&b| b == needle);
                        assert_eq!(find_byte(&hay, needle), want, "{needle} {filler} {hay:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_str_split() {
        for s in [
            "", ";", ";;", "a", "a;", ";a", "a;b", "a;;b", "é;ü;", "ab;cd;ef", "x;é;;",
        ] {
            let ours: Vec<&str> = split_ascii(s, b';').collect();
            let std: Vec<&str> = s.split(';').collect();
            assert_eq!(ours, std, "{s:?}");
            assert_eq!(split_once_ascii(s, b';'), s.split_once(';'), "{s:?}");
        }
    }
}
