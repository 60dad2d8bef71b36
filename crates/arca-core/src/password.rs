//! GetRandomPassword: turns a `GetRandomPasswordRequest` into a password drawn from the
//! operating system's CSPRNG. Flow: resolve the character classes the request allows
//! (minus `ExcludeCharacters`), check the length and the classes against each other,
//! draw one character of every required class plus the rest from the whole pool, then
//! shuffle so the required characters land at random positions.
//!
//! What AWS documents (API reference, "GetRandomPassword", botocore model
//! secretsmanager 2017-10-17):
//! - `PasswordLength`: "If you don't include this parameter, the default length is 32
//!   characters." Model range 1..=4096.
//! - By default the password uses "uppercase and lowercase letters, numbers, and the
//!   following characters in passwords: ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``".
//! - `IncludeSpace`: "If you include this switch, the password can contain space
//!   characters" (default: no space).
//! - `RequireEachIncludedType`: "include at least one upper and lowercase letter, one
//!   number, and one punctuation. If you don't include this switch, the password contains
//!   at least one of every character type" (default: true). The space is not one of the
//!   listed types, so it is allowed but never required.
//! - `ExcludeCharacters`: "A string of the characters that you don't want in the
//!   password." Model max 4096.
//!
//! AWS's message when the length cannot hold one character of each required type is
//! "Password length is too short based on the required types." (as reproduced by moto,
//! `moto/secretsmanager/models.py`). The docs give no message for an empty pool.

use crate::validate::Check;
use arca_types::secret::SecretString;
use arca_types::wire::GetRandomPasswordRequest;
use arca_types::ApiError;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use rand::{CryptoRng, Rng};

/// Default `PasswordLength` (API reference: "the default length is 32 characters").
pub const DEFAULT_LENGTH: i64 = 32;
/// Bounds of `PasswordLengthType` in the model.
pub const MIN_LENGTH: i64 = 1;
pub const MAX_LENGTH: i64 = 4096;
/// Max length of `ExcludeCharactersType` in the model.
pub const MAX_EXCLUDE_CHARACTERS: usize = 4096;

pub const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
pub const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
/// Exactly the 32 characters the API reference lists for `ExcludePunctuation`.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Generates a password with the operating system's CSPRNG.
pub fn generate(req: &GetRandomPasswordRequest) -> Result<SecretString, ApiError> {
    generate_with(req, &mut OsRng)
}

/// The generator with an injected CSPRNG (tests pass a seeded one where they need to).
pub fn generate_with<R: Rng + CryptoRng + ?Sized>(
    req: &GetRandomPasswordRequest,
    rng: &mut R,
) -> Result<SecretString, ApiError> {
    let length = validated_length(req)?;
    let plan = Plan::from_request(req)?;
    let length_usize = usize::try_from(length).map_err(|_| ApiError::internal())?;

    if plan.required.len() > length_usize {
        return Err(ApiError::password_too_short());
    }

    // Every byte is ASCII, so the buffer is valid UTF-8 by construction; capacity is
    // reserved up front so no reallocation leaves a stray copy of the password behind.
    let mut out: Vec<u8> = Vec::with_capacity(length_usize);
    for class in &plan.required {
        out.push(pick(class, rng));
    }
    while out.len() < length_usize {
        out.push(pick(&plan.pool, rng));
    }
    // Fisher-Yates over the whole password: the required characters end up at uniformly
    // random positions instead of always leading the string.
    out.shuffle(rng);

    String::from_utf8(out)
        .map(SecretString::new)
        .map_err(|_| ApiError::internal())
}

/// The model's constraints (PasswordLength 1–4096, ExcludeCharacters at most 4096
/// characters), gathered into one ValidationException; the length to generate.
fn validated_length(req: &GetRandomPasswordRequest) -> Result<i64, ApiError> {
    let mut check = Check::new();
    check.range(
        "passwordLength",
        req.password_length,
        MIN_LENGTH,
        MAX_LENGTH,
    );
    check.length(
        "excludeCharacters",
        req.exclude_characters.as_deref(),
        0,
        MAX_EXCLUDE_CHARACTERS,
    );
    check.finish()?;
    Ok(req.password_length.unwrap_or(DEFAULT_LENGTH))
}

/// Uniform choice from a non-empty class (`SliceRandom::choose` uses `gen_range`,
/// which rejects instead of reducing modulo, so there is no bias).
fn pick<R: Rng + ?Sized>(class: &[u8], rng: &mut R) -> u8 {
    // Classes reaching here are never empty (checked in `Plan::from_request`).
    class.choose(rng).copied().unwrap_or(b'a')
}

/// The characters a request allows, grouped as the API describes them.
#[derive(Debug)]
struct Plan {
    /// Every allowed character, each once.
    pool: Vec<u8>,
    /// One entry per character type that must appear at least once.
    required: Vec<Vec<u8>>,
}

impl Plan {
    fn from_request(req: &GetRandomPasswordRequest) -> Result<Self, ApiError> {
        let exclude = req.exclude_characters.as_deref().unwrap_or("");
        let allowed = |set: &str| -> Vec<u8> {
            set.bytes()
                .filter(|b| !exclude.contains(char::from(*b)))
                .collect()
        };
        let flag = |v: Option<bool>| v.unwrap_or(false);

        let mut types: Vec<Vec<u8>> = Vec::with_capacity(4);
        if !flag(req.exclude_lowercase) {
            types.push(allowed(LOWERCASE));
        }
        if !flag(req.exclude_uppercase) {
            types.push(allowed(UPPERCASE));
        }
        if !flag(req.exclude_numbers) {
            types.push(allowed(DIGITS));
        }
        if !flag(req.exclude_punctuation) {
            types.push(allowed(PUNCTUATION));
        }
        // A type whose every character is in ExcludeCharacters is not "included": it
        // cannot be required, since no password could satisfy it.
        types.retain(|t| !t.is_empty());

        let mut pool: Vec<u8> = types.concat();
        if flag(req.include_space) {
            pool.extend(allowed(" "));
        }
        if pool.is_empty() {
            return Err(ApiError::password_nothing_allowed());
        }

        let required = if req.require_each_included_type.unwrap_or(true) {
            types
        } else {
            Vec::new()
        };
        Ok(Self { pool, required })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;
    use std::collections::HashSet;

    fn req() -> GetRandomPasswordRequest {
        GetRandomPasswordRequest::default()
    }

    fn gen(r: &GetRandomPasswordRequest) -> String {
        generate(r).expect("generates").expose().to_owned()
    }

    fn has_any(p: &str, set: &str) -> bool {
        p.chars().any(|c| set.contains(c))
    }

    #[test]
    fn default_is_32_characters_from_the_documented_sets() {
        let all: String = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION].concat();
        for _ in 0..200 {
            let p = gen(&req());
            assert_eq!(p.len(), 32);
            assert!(p.chars().all(|c| all.contains(c)), "{p}");
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn punctuation_set_is_the_documented_32_characters() {
        assert_eq!(PUNCTUATION.len(), 32);
        let unique: HashSet<char> = PUNCTUATION.chars().collect();
        assert_eq!(unique.len(), 32);
        assert!(PUNCTUATION.chars().all(|c| c.is_ascii_punctuation()));
        // Every ASCII punctuation character is in the set.
        assert!((0u8..128)
            .map(char::from)
            .filter(|c| c.is_ascii_punctuation())
            .all(|c| PUNCTUATION.contains(c)));
    }

    #[test]
    fn requested_lengths_are_honoured() {
        for len in [1, 2, 4, 5, 31, 100, 4096] {
            let p = gen(&GetRandomPasswordRequest {
                password_length: Some(len),
                require_each_included_type: Some(len >= 4),
                ..req()
            });
            assert_eq!(p.len() as i64, len);
        }
    }

    #[test]
    fn length_out_of_range_is_a_validation_error() {
        for len in [0, -1, 4097, i64::MAX, i64::MIN] {
            let err = generate(&GetRandomPasswordRequest {
                password_length: Some(len),
                ..req()
            })
            .expect_err("out of range");
            assert_eq!(err.code, ErrorCode::Validation, "{len}");
            assert!(err.message.contains("passwordLength"), "{}", err.message);
        }
    }

    #[test]
    fn exclusions_are_honoured_over_many_samples() {
        let cases: Vec<(GetRandomPasswordRequest, &str)> = vec![
            (
                GetRandomPasswordRequest {
                    exclude_lowercase: Some(true),
                    ..req()
                },
                LOWERCASE,
            ),
            (
                GetRandomPasswordRequest {
                    exclude_uppercase: Some(true),
                    ..req()
                },
                UPPERCASE,
            ),
            (
                GetRandomPasswordRequest {
                    exclude_numbers: Some(true),
                    ..req()
                },
                DIGITS,
            ),
            (
                GetRandomPasswordRequest {
                    exclude_punctuation: Some(true),
                    ..req()
                },
                PUNCTUATION,
            ),
            (
                GetRandomPasswordRequest {
                    exclude_characters: Some("xyzDje@?!.\"\\'`".into()),
                    ..req()
                },
                "xyzDje@?!.\"\\'`",
            ),
        ];
        for (r, banned) in cases {
            for _ in 0..300 {
                let p = gen(&GetRandomPasswordRequest {
                    password_length: Some(64),
                    ..r.clone()
                });
                assert!(!has_any(&p, banned), "{p} contains one of {banned}");
            }
        }
    }

    #[test]
    fn each_included_type_is_present_when_required() {
        // Length 4 with four types: every sample must hold exactly one of each.
        for _ in 0..2000 {
            let p = gen(&GetRandomPasswordRequest {
                password_length: Some(4),
                ..req()
            });
            for set in [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION] {
                assert!(has_any(&p, set), "{p} lacks one of {set}");
            }
        }
        // With a type excluded, only the remaining three are required.
        for _ in 0..2000 {
            let p = gen(&GetRandomPasswordRequest {
                password_length: Some(3),
                exclude_punctuation: Some(true),
                ..req()
            });
            for set in [LOWERCASE, UPPERCASE, DIGITS] {
                assert!(has_any(&p, set), "{p} lacks one of {set}");
            }
        }
    }

    #[test]
    fn required_characters_land_at_random_positions() {
        // With length 4 and four required types, each position must over many samples
        // hold characters of every type (a fixed layout would pin one type per slot).
        let sets = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION];
        let mut seen = [[false; 4]; 4];
        for _ in 0..2000 {
            let p = gen(&GetRandomPasswordRequest {
                password_length: Some(4),
                ..req()
            });
            for (pos, c) in p.chars().enumerate() {
                for (t, set) in sets.iter().enumerate() {
                    if set.contains(c) {
                        seen[pos][t] = true;
                    }
                }
            }
        }
        assert!(seen.iter().flatten().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn types_are_optional_when_not_required() {
        // Length 1 can't hold four types, but without the requirement it is fine.
        let p = gen(&GetRandomPasswordRequest {
            password_length: Some(1),
            require_each_included_type: Some(false),
            ..req()
        });
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn length_below_required_type_count_is_rejected_with_aws_message() {
        for (len, r) in [
            (3, req()),
            (1, req()),
            (
                2,
                GetRandomPasswordRequest {
                    exclude_numbers: Some(true),
                    ..req()
                },
            ),
        ] {
            let err = generate(&GetRandomPasswordRequest {
                password_length: Some(len),
                ..r
            })
            .expect_err("too short");
            assert_eq!(err.code, ErrorCode::InvalidParameter);
            assert_eq!(
                err.message,
                "Password length is too short based on the required types."
            );
        }
        // Exactly as many as the types is fine.
        let p = gen(&GetRandomPasswordRequest {
            password_length: Some(2),
            exclude_numbers: Some(true),
            exclude_punctuation: Some(true),
            ..req()
        });
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_type_emptied_by_exclude_characters_is_not_required() {
        let p = gen(&GetRandomPasswordRequest {
            password_length: Some(3),
            exclude_characters: Some(DIGITS.into()),
            exclude_punctuation: Some(true),
            ..req()
        });
        assert_eq!(p.len(), 3);
        assert!(!has_any(&p, DIGITS));
    }

    #[test]
    fn space_only_with_include_space() {
        let mut saw_space = false;
        for _ in 0..500 {
            let without = gen(&GetRandomPasswordRequest {
                password_length: Some(64),
                ..req()
            });
            assert!(!without.contains(' '));
            let with = gen(&GetRandomPasswordRequest {
                password_length: Some(64),
                include_space: Some(true),
                ..req()
            });
            saw_space |= with.contains(' ');
        }
        assert!(
            saw_space,
            "IncludeSpace never produced a space in 500 draws"
        );
        // ExcludeCharacters takes the space back.
        for _ in 0..200 {
            let p = gen(&GetRandomPasswordRequest {
                password_length: Some(64),
                include_space: Some(true),
                exclude_characters: Some(" ".into()),
                ..req()
            });
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn space_alone_is_a_valid_pool_and_never_required() {
        let p = gen(&GetRandomPasswordRequest {
            password_length: Some(5),
            exclude_lowercase: Some(true),
            exclude_uppercase: Some(true),
            exclude_numbers: Some(true),
            exclude_punctuation: Some(true),
            include_space: Some(true),
            ..req()
        });
        assert_eq!(p, "     ");
    }

    #[test]
    fn everything_excluded_is_invalid_parameter() {
        let all_types_off = GetRandomPasswordRequest {
            exclude_lowercase: Some(true),
            exclude_uppercase: Some(true),
            exclude_numbers: Some(true),
            exclude_punctuation: Some(true),
            ..req()
        };
        let err = generate(&all_types_off).expect_err("empty pool");
        assert_eq!(err.code, ErrorCode::InvalidParameter);

        let every_char: String = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION, " "].concat();
        let err = generate(&GetRandomPasswordRequest {
            exclude_characters: Some(every_char),
            include_space: Some(true),
            ..req()
        })
        .expect_err("empty pool");
        assert_eq!(err.code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn exclude_characters_longer_than_the_model_allows_is_rejected() {
        let err = generate(&GetRandomPasswordRequest {
            exclude_characters: Some("a".repeat(4097)),
            ..req()
        })
        .expect_err("too long");
        assert_eq!(err.code, ErrorCode::Validation);
        assert!(generate(&GetRandomPasswordRequest {
            exclude_characters: Some("a".repeat(4096)),
            ..req()
        })
        .is_ok());
    }

    #[test]
    fn every_allowed_character_appears_over_many_samples() {
        // 400 passwords of 128 characters = 51,200 draws over 94 characters: the chance
        // that any one character never shows up is about 94 * (93/94)^51200, i.e. nil.
        let allowed: String = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION].concat();
        let mut seen = HashSet::new();
        for _ in 0..400 {
            seen.extend(
                gen(&GetRandomPasswordRequest {
                    password_length: Some(128),
                    ..req()
                })
                .chars(),
            );
        }
        let missing: Vec<char> = allowed.chars().filter(|c| !seen.contains(c)).collect();
        assert!(missing.is_empty(), "never drawn: {missing:?}");
        assert_eq!(seen.len(), allowed.len());
    }

    #[test]
    fn distribution_is_roughly_flat() {
        // Loose sanity bound, not a statistical test: with 188,000 draws over 94
        // characters each expects 2,000; a biased generator (e.g. byte % 94) would skew
        // the first characters far less than this bound allows, so it only catches
        // gross errors like a class being drawn twice as often.
        let allowed: Vec<char> = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION]
            .concat()
            .chars()
            .collect();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..1000 {
            for c in gen(&GetRandomPasswordRequest {
                password_length: Some(188),
                require_each_included_type: Some(false),
                ..req()
            })
            .chars()
            {
                *counts.entry(c).or_insert(0u32) += 1;
            }
        }
        for c in allowed {
            let n = counts.get(&c).copied().unwrap_or(0);
            assert!((1400..=2600).contains(&n), "{c:?} drawn {n} times");
        }
    }

    #[test]
    fn result_is_redacted_in_debug() {
        let s = generate(&req()).expect("generates");
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
