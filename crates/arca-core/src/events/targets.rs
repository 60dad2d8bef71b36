//! What a target's ARN names: a bound function (`arn:aws:lambda:<region>:<account>:
//! function:<name>`, bound to a webhook or a local command as rotation functions are), or
//! Arca's built-in action "copy the secret to a region",
//! `arn:arca:events:<target region>:<account>:action/copy-secret[/<KmsKeyId>]`.

/// A parsed target ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    Function(String),
    CopySecret {
        region: String,
        kms_key_id: Option<String>,
    },
}

pub const COPY_ACTION: &str = "action/copy-secret";

impl TargetKind {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let region_ok = |r: &str| {
            !r.is_empty()
                && r.len() <= 64
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let account_ok = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
        match parts.as_slice() {
            ["arn", "aws", "lambda", ..] => {
                if !arca_types::arn::valid_function_arn(arn) {
                    return Err(format!("{arn} is not a function ARN."));
                }
                Ok(TargetKind::Function(arn.to_owned()))
            }
            ["arn", "arca", "events", region, account, rest]
                if region_ok(region) && account_ok(account) =>
            {
                let kms = match rest.strip_prefix(COPY_ACTION) {
                    Some("") => None,
                    Some(k) => match k.strip_prefix('/') {
                        Some(k) if !k.is_empty() && k.len() <= 2048 => Some(k.to_owned()),
                        _ => return Err(format!("{arn} names no key after {COPY_ACTION}/.")),
                    },
                    None => return Err(format!("{arn} is not an action Arca has.")),
                };
                Ok(TargetKind::CopySecret {
                    region: (*region).to_owned(),
                    kms_key_id: kms,
                })
            }
            _ => Err(format!(
                "{arn} is not a supported target: a function ARN (arn:aws:lambda:...) bound with `arca rotation-function add`, or arn:arca:events:<region>:<account>:{COPY_ACTION}."
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_arns() {
        assert_eq!(
            TargetKind::parse("arn:aws:lambda:us-east-1:123456789012:function:copy"),
            Ok(TargetKind::Function(
                "arn:aws:lambda:us-east-1:123456789012:function:copy".into()
            ))
        );
        assert_eq!(
            TargetKind::parse("arn:arca:events:us-west-2:123456789012:action/copy-secret"),
            Ok(TargetKind::CopySecret {
                region: "us-west-2".into(),
                kms_key_id: None
            })
        );
        assert_eq!(
            TargetKind::parse(
                "arn:arca:events:us-west-2:123456789012:action/copy-secret/alias/backup"
            ),
            Ok(TargetKind::CopySecret {
                region: "us-west-2".into(),
                kms_key_id: Some("alias/backup".into())
            })
        );
        for bad in [
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:lambda:us-east-1:123:function:x",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:arca:events:us-west-2:123456789012:action/delete-everything",
            "arn:arca:events:us-west-2:123456789012:action/copy-secret/",
            "https://example.com/hook",
        ] {
            assert!(TargetKind::parse(bad).is_err(), "{bad}");
        }
    }
}
