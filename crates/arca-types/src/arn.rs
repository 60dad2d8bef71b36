//! Secret ARNs: `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random chars>`,
//! and how a client's SecretId (name, full ARN or partial ARN) is read.

use rand::Rng;

const SUFFIX_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The six random characters AWS appends to a secret's name in its ARN.
pub fn random_suffix() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..6)
        .map(|_| SUFFIX_CHARS[rng.gen_range(0..SUFFIX_CHARS.len())] as char)
        .collect()
}

pub fn secret_arn(region: &str, account: &str, name: &str, suffix: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

/// How a SecretId names a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A plain name.
    Name(String),
    /// An ARN. `resource` is what follows `secret:`: a name with its random suffix (full
    /// ARN) or without it (partial ARN); which one is decided by lookup.
    Arn {
        arn: String,
        region: String,
        account: String,
        resource: String,
    },
}

impl SecretRef {
    pub fn parse(id: &str) -> SecretRef {
        if let Some(rest) = id.strip_prefix("arn:") {
            // arn:<partition>:secretsmanager:<region>:<account>:secret:<resource>
            let parts: Vec<&str> = rest.splitn(6, ':').collect();
            if parts.len() == 6 && parts[1] == "secretsmanager" && parts[4] == "secret" {
                return SecretRef::Arn {
                    arn: id.to_string(),
                    region: parts[2].to_string(),
                    account: parts[3].to_string(),
                    resource: parts[5].to_string(),
                };
            }
        }
        SecretRef::Name(id.to_string())
    }
}

/// A secret's name from its id: an ARN's resource less AWS's `-` and six-character
/// suffix, or the id itself when it is a name.
pub fn secret_name_of(id: &str) -> String {
    match SecretRef::parse(id) {
        SecretRef::Arn { resource, .. } => {
            let cut = resource.len().saturating_sub(7);
            if resource.len() > 7 && resource.as_bytes()[cut] == b'-' {
                resource[..cut].to_owned()
            } else {
                resource
            }
        }
        SecretRef::Name(n) => n,
    }
}

/// `arn:aws:lambda:<region>:<12-digit account>:function:<name>`: what rotation functions
/// and event targets are bound to.
pub fn valid_function_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5] == "function"
        && !parts[6].is_empty()
        && parts[6]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c))
}

/// KMS-style key ARN for a named encryption key.
pub fn kms_key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_six_alphanumerics() {
        let s = random_suffix();
        assert_eq!(s.len(), 6);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn parses_names_and_arns() {
        assert_eq!(
            SecretRef::parse("db/prod"),
            SecretRef::Name("db/prod".into())
        );
        match SecretRef::parse(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/prod-AbC123",
        ) {
            SecretRef::Arn {
                region,
                account,
                resource,
                ..
            } => {
                assert_eq!(region, "us-east-1");
                assert_eq!(account, "123456789012");
                assert_eq!(resource, "db/prod-AbC123");
            }
            other => panic!("not an ARN: {other:?}"),
        }
        // Something that merely starts with arn: but is not a secret ARN is a name.
        assert!(matches!(SecretRef::parse("arn:foo"), SecretRef::Name(_)));
    }
}
