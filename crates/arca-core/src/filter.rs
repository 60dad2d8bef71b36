//! ListSecrets and BatchGetSecretValue filters, and the NextToken codec of ListSecrets.
//!
//! Flow: the wire `Filters` list is validated against botocore's model and parsed once
//! into a typed [`Filters`] value; the listing code then asks it for an index hint
//! ([`Filters::name_prefixes`]) and evaluates [`Filters::matches`] on every stored
//! [`SecretRecord`] the store yields. Pages are chained with an opaque NextToken
//! ([`encode_list_token`] / [`decode_list_token`]) bound to a fingerprint of the query
//! ([`query_fingerprint`]) so a token cannot be replayed against another query.
//!
//! Semantics, with the sources they come from:
//! - Keys (API reference "Filter",
//!   <https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Filter.html>):
//!   "name: Prefix match, case-sensitive", "tag-key: Prefix match, case-sensitive",
//!   "tag-value: Prefix match, case-sensitive", "primary-region: Prefix match,
//!   case-sensitive", "all: Breaks the filter value string into words and then searches
//!   all attributes for matches. Not case-sensitive."
//! - `description`: the API reference says "Prefix match, not case-sensitive", but the
//!   user guide ("Find secrets in AWS Secrets Manager",
//!   <https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_search-secret.html>)
//!   says it "Matches the words in secret descriptions, not case-sensitive", with
//!   `My Description` matching "Description of my secret". Tests run against AWS
//!   (localstack `test_list_secrets_filtering`, marked aws.validated) confirm the word
//!   reading: `a secret` matches "an secret" but not "asecret", and `!c` excludes none of
//!   "a secret"/"an secret"/"asecret"/"thesecret". So a description value matches when
//!   every word of it is a prefix of some word of the description.
//! - `owning-service`: the API reference says case-sensitive prefix, the user guide says
//!   "Matches the beginning of the managing service ID prefix, not case-sensitive"; the
//!   user guide has been right where the two disagree (description), so we follow it.
//! - Words: "The words are separated by any change from uppercase to lowercase, from
//!   letter to number, or from number/letter to punctuation. For example ...
//!   `credsDatabase#892` searches for `creds`, `Database`, and `892`" (user guide).
//! - `all` searches "the secret name, description, tag key, and tag value" (user
//!   guide). AWS's launch blog ("Identify, arrange, and manage secrets easily using
//!   enhanced search in AWS Secrets Manager") says every word must be found "in the same
//!   field"; we follow it, as for description.
//! - Negation: "You can prefix your search value with an exclamation mark (!) in order to
//!   perform negation filters" (API reference). AWS returns for `name` = `!/` exactly the
//!   secrets whose name does not start with `/` (localstack issue #4820, validated).
//! - Several values of one key are OR'ed; several filters are AND'ed, also when they
//!   repeat a key (moto's tests, written against AWS). The docs say nothing on mixing
//!   negated and plain values in one filter: Arca reads them as "matches one of the plain
//!   values (if any) and none of the negated ones", which keeps `["!a", "!b"]` meaning
//!   "neither" rather than the vacuous "not both".
//! - `tag-key` and `tag-value` are independent filters: nothing in the docs ties them to
//!   the same tag, so `tag-key=env` AND `tag-value=prod` matches a secret tagged
//!   `env=dev, owner=prod`.

use crate::validate::Check;
use arca_store::{CursorValue, ListCursor, SecretRecord, SortBy};
use arca_types::wire::Filter;
use arca_types::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `FiltersListType` max.
pub const MAX_FILTERS: usize = 10;
/// `FilterValuesStringList` min and max.
pub const MIN_VALUES: usize = 1;
pub const MAX_VALUES: usize = 10;
/// `FilterValueStringType` max.
pub const MAX_VALUE_LEN: usize = 512;
/// `FilterValueStringType` pattern, quoted in validation messages.
pub const VALUE_PATTERN: &str = r"^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$";

/// One of the keys of `FilterNameStringType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterKey {
    Description,
    Name,
    TagKey,
    TagValue,
    PrimaryRegion,
    OwningService,
    All,
}

impl FilterKey {
    pub const ALL_KEYS: [FilterKey; 7] = [
        FilterKey::Description,
        FilterKey::Name,
        FilterKey::TagKey,
        FilterKey::TagValue,
        FilterKey::PrimaryRegion,
        FilterKey::OwningService,
        FilterKey::All,
    ];

    /// The wire spelling (exact, lowercase: the enum is case-sensitive).
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKey::Description => "description",
            FilterKey::Name => "name",
            FilterKey::TagKey => "tag-key",
            FilterKey::TagValue => "tag-value",
            FilterKey::PrimaryRegion => "primary-region",
            FilterKey::OwningService => "owning-service",
            FilterKey::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL_KEYS.into_iter().find(|k| k.as_str() == s)
    }

    /// The keys in the order AWS's validation message lists them (moto's recording of
    /// AWS's message, with the two keys added since).
    const NAMES: &'static [&'static str] = &[
        "all",
        "name",
        "tag-key",
        "description",
        "tag-value",
        "primary-region",
        "owning-service",
    ];
}

/// One value of a filter: a search term, possibly negated with a leading `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterValue {
    /// The value as the client sent it (kept for the query fingerprint).
    pub raw: String,
    pub negated: bool,
    /// The value without its leading `!`.
    pub term: String,
    /// Lowercased words of `term`, for the word-matching keys (description, all).
    words: Vec<String>,
    /// Lowercased `term`, for case-insensitive prefix keys (owning-service).
    lower: String,
}

impl FilterValue {
    fn new(raw: &str) -> Self {
        let (negated, term) = match raw.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        Self {
            raw: raw.to_owned(),
            negated,
            term: term.to_owned(),
            words: words(term),
            lower: term.to_lowercase(),
        }
    }
}

/// One validated filter: a key and the values OR'ed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterClause {
    pub key: FilterKey,
    pub values: Vec<FilterValue>,
}

impl FilterClause {
    /// Matches one of the plain values (when there are any) and none of the negated ones.
    fn matches(&self, s: &SecretRecord) -> bool {
        let mut any_plain = false;
        let mut plain_hit = false;
        for v in &self.values {
            let hit = value_matches(self.key, v, s);
            if v.negated {
                if hit {
                    return false;
                }
            } else {
                any_plain = true;
                plain_hit |= hit;
            }
        }
        !any_plain || plain_hit
    }
}

/// A validated filter set: every clause must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    clauses: Vec<FilterClause>,
}

impl Filters {
    /// Validates the wire filters against the model and parses them. `None` and an
    /// empty list both mean "no filter".
    pub fn parse(filters: &Option<Vec<Filter>>) -> Result<Self, ApiError> {
        let filters = filters.as_deref().unwrap_or_default();
        // The model's constraints first, all of them (one ValidationException)...
        let mut check = Check::new();
        check.count("filters", Some(filters), 0, MAX_FILTERS);
        for (i, f) in filters.iter().enumerate() {
            let n = i + 1; // AWS numbers list members from 1 in validation messages.
            check.one_of(
                &format!("filters.{n}.member.key"),
                f.key.as_deref(),
                FilterKey::NAMES,
            );
            let path = format!("filters.{n}.member.values");
            check.count(&path, f.values.as_deref(), MIN_VALUES, MAX_VALUES);
            for (j, v) in f.values.iter().flatten().enumerate() {
                // Values are matched against secrets' metadata: not echoed.
                let value_path = format!("{path}.{}.member", j + 1);
                check.hidden_length(&value_path, Some(v.chars().count()), 0, MAX_VALUE_LEN);
                check.pattern(&value_path, Some(v), value_is_valid, VALUE_PATTERN, true);
            }
        }
        check.finish()?;
        // ...then the service's: a filter needs its key and values.
        let mut clauses = Vec::with_capacity(filters.len());
        for f in filters {
            let key = f
                .key
                .as_deref()
                .and_then(FilterKey::parse)
                .ok_or_else(ApiError::filter_key_required)?;
            let values = f
                .values
                .as_deref()
                .ok_or_else(|| ApiError::filter_values_required(key.as_str()))?;
            clauses.push(FilterClause {
                key,
                values: values.iter().map(|v| FilterValue::new(v)).collect(),
            });
        }
        Ok(Self { clauses })
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    pub fn clauses(&self) -> &[FilterClause] {
        &self.clauses
    }

    /// Whether the secret passes every filter.
    pub fn matches(&self, s: &SecretRecord) -> bool {
        self.clauses.iter().all(|c| c.matches(s))
    }

    /// Index hint: `Some(prefixes)` only when every secret that [`Self::matches`] has a
    /// name starting with one of `prefixes`. That holds for a `name` filter with at least
    /// one plain (non-negated) value: the filter can only match through a plain value,
    /// and a plain `name` value is a case-sensitive prefix. Negated values only remove
    /// secrets, so they never widen the set. Redundant prefixes (those starting with
    /// another listed prefix) are dropped; an empty prefix restricts nothing, so a clause
    /// holding one gives no hint.
    pub fn name_prefixes(&self) -> Option<Vec<String>> {
        self.clauses
            .iter()
            .filter(|c| c.key == FilterKey::Name)
            .filter_map(|c| {
                let mut plain: Vec<&str> = c
                    .values
                    .iter()
                    .filter(|v| !v.negated)
                    .map(|v| v.term.as_str())
                    .collect();
                if plain.is_empty() || plain.iter().any(|p| p.is_empty()) {
                    return None;
                }
                plain.sort_unstable();
                let mut kept: Vec<String> = Vec::with_capacity(plain.len());
                for p in plain {
                    // Sorted order puts a prefix before everything it covers.
                    if !kept.iter().any(|k| p.starts_with(k.as_str())) {
                        kept.push(p.to_owned());
                    }
                }
                Some(kept)
            })
            // Any one name clause is a sound hint (all must match); take the narrowest.
            .min_by_key(|ps| {
                (
                    ps.len(),
                    std::cmp::Reverse(ps.iter().map(String::len).min()),
                )
            })
    }
}

/// `FilterValueStringType`: at most 512 characters matching
/// `^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$` (the optional leading `!` is also in the class,
/// so the pattern is "only these characters").
fn value_is_valid(v: &str) -> bool {
    v.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, ' ' | ':' | '_' | '@' | '/' | '+' | '=' | '.' | '-' | '!')
    })
}

fn value_matches(key: FilterKey, v: &FilterValue, s: &SecretRecord) -> bool {
    match key {
        FilterKey::Name => s.name.starts_with(&v.term),
        FilterKey::TagKey => s.tags.iter().any(|(k, _)| k.starts_with(&v.term)),
        FilterKey::TagValue => s.tags.iter().any(|(_, val)| val.starts_with(&v.term)),
        // ListSecrets' PrimaryRegion is "The Region where Secrets Manager originated the
        // secret" (model, SecretListEntry): a secret that is not a replica originated
        // where it lives.
        FilterKey::PrimaryRegion => s
            .primary_region
            .as_deref()
            .unwrap_or(&s.region)
            .starts_with(&v.term),
        FilterKey::OwningService => s
            .owning_service
            .as_deref()
            .is_some_and(|o| o.to_lowercase().starts_with(&v.lower)),
        FilterKey::Description => s
            .description
            .as_deref()
            .is_some_and(|d| words_match(&v.words, d)),
        FilterKey::All => {
            words_match(&v.words, &s.name)
                || s.description
                    .as_deref()
                    .is_some_and(|d| words_match(&v.words, d))
                || s.tags
                    .iter()
                    .any(|(k, val)| words_match(&v.words, k) || words_match(&v.words, val))
        }
    }
}

/// Every search word is a prefix of some word of `field` (both lowercased). A search
/// value without any word (empty, or only punctuation) matches nothing.
fn words_match(search: &[String], field: &str) -> bool {
    if search.is_empty() {
        return false;
    }
    let field_words = words(field);
    search
        .iter()
        .all(|w| field_words.iter().any(|f| f.starts_with(w.as_str())))
}

/// Splits text into lowercase words the way the user guide describes: at every
/// character that is not a letter or digit, at a lowercase-to-uppercase change
/// (`credsDatabase` -> creds, database), before the last capital of a capital run that
/// starts a word (`HTTPServer` -> http, server), and between letters and digits
/// (`db892` -> db, 892).
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next = chars.get(i + 1).copied();
            let boundary = prev.is_alphanumeric()
                && ((prev.is_lowercase() && c.is_uppercase())
                    || (prev.is_alphabetic() != c.is_alphabetic())
                    || (prev.is_uppercase()
                        && c.is_uppercase()
                        && next.is_some_and(char::is_lowercase)));
            if boundary && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

// ---------------------------------------------------------------------------------------
// NextToken codec
// ---------------------------------------------------------------------------------------

/// Version byte of the token layout below.
const TOKEN_V1: u8 = 1;
/// `NextTokenType` max length.
const MAX_TOKEN_LEN: usize = 4096;
const TAG_TIME_NONE: u8 = 0;
const TAG_TIME_SOME: u8 = 1;
const TAG_NAME: u8 = 2;

fn invalid_token() -> ApiError {
    ApiError::invalid_next_token()
}

/// A stable 64-bit fingerprint of everything that decides a listing's order and
/// membership (not the page size, which clients may change between pages). Stable across
/// processes and Rust versions (FNV-1a over a canonical encoding), so tokens survive a
/// restart. Filters are canonicalised (values and clauses sorted) because AND and OR
/// don't care about order.
pub fn query_fingerprint(
    filters: &Filters,
    sort_by: SortBy,
    descending: bool,
    include_planned_deletion: bool,
) -> u64 {
    let mut clauses: Vec<Vec<u8>> = filters
        .clauses
        .iter()
        .map(|c| {
            let mut values: Vec<&str> = c.values.iter().map(|v| v.raw.as_str()).collect();
            values.sort_unstable();
            values.dedup();
            let mut enc = Vec::new();
            put_str(&mut enc, c.key.as_str());
            for v in values {
                put_str(&mut enc, v);
            }
            enc
        })
        .collect();
    clauses.sort_unstable();
    clauses.dedup();

    let mut buf = b"arca.ListSecrets.v1".to_vec();
    buf.push(match sort_by {
        SortBy::CreatedDate => 0,
        SortBy::LastAccessedDate => 1,
        SortBy::LastChangedDate => 2,
        SortBy::Name => 3,
    });
    buf.push(u8::from(descending));
    buf.push(u8::from(include_planned_deletion));
    for c in clauses {
        buf.extend_from_slice(&(c.len() as u64).to_be_bytes());
        buf.extend_from_slice(&c);
    }
    fnv1a64(&buf)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Encodes a cursor as an opaque, URL-safe NextToken bound to `query_fingerprint`.
///
/// Layout (then URL-safe base64 without padding): version `1`, fingerprint (u64 BE),
/// cursor tag (0 = no time, 1 = time, 2 = name), the sort value (i64 BE millis, or u16 BE
/// length + UTF-8 name), then u16 BE length + UTF-8 ARN. Tokens are not secret: they
/// carry a secret's name and ARN, which the previous page already showed the caller.
pub fn encode_list_token(cursor: &ListCursor, query_fingerprint: u64) -> String {
    let mut buf = Vec::with_capacity(16 + cursor.arn.len());
    buf.push(TOKEN_V1);
    buf.extend_from_slice(&query_fingerprint.to_be_bytes());
    match &cursor.sort_value {
        CursorValue::Time(None) => buf.push(TAG_TIME_NONE),
        CursorValue::Time(Some(ms)) => {
            buf.push(TAG_TIME_SOME);
            buf.extend_from_slice(&ms.to_be_bytes());
        }
        CursorValue::Name(name) => {
            buf.push(TAG_NAME);
            put_short_str(&mut buf, name);
        }
    }
    put_short_str(&mut buf, &cursor.arn);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Names are at most 512 and ARNs 2048 characters in the model, far below u16::MAX;
/// longer input is cut at a character boundary rather than overflowing the length field.
fn put_short_str(buf: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let len = u16::try_from(end).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&s.as_bytes()[..end]);
}

/// Decodes a NextToken produced by [`encode_list_token`] for the same query. Anything
/// else (garbage, truncation, another query's token, an unknown version) is
/// `InvalidNextTokenException`; this function never panics.
pub fn decode_list_token(token: &str, query_fingerprint: u64) -> Result<ListCursor, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(invalid_token());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| invalid_token())?;
    let mut r = Reader(&bytes);
    if r.u8()? != TOKEN_V1 {
        return Err(invalid_token());
    }
    if r.u64()? != query_fingerprint {
        return Err(invalid_token());
    }
    let sort_value = match r.u8()? {
        TAG_TIME_NONE => CursorValue::Time(None),
        TAG_TIME_SOME => CursorValue::Time(Some(r.i64()?)),
        TAG_NAME => CursorValue::Name(r.short_str()?),
        _ => return Err(invalid_token()),
    };
    let arn = r.short_str()?;
    if !r.0.is_empty() {
        return Err(invalid_token());
    }
    Ok(ListCursor { sort_value, arn })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ApiError> {
        if self.0.len() < n {
            return Err(invalid_token());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ApiError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, ApiError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| invalid_token())?;
        Ok(u64::from_be_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, ApiError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| invalid_token())?;
        Ok(i64::from_be_bytes(b))
    }
    fn short_str(&mut self) -> Result<String, ApiError> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| invalid_token())?;
        let len = usize::from(u16::from_be_bytes(b));
        let s = self.take(len)?;
        String::from_utf8(s.to_vec()).map_err(|_| invalid_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;
    use rand::{Rng, SeedableRng};

    fn secret(name: &str) -> SecretRecord {
        SecretRecord {
            region: "us-east-1".into(),
            arn: format!("arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-AbCdEf"),
            name: name.into(),
            description: None,
            kms_key_id: None,
            secret_type: None,
            owning_service: None,
            primary_region: None,
            created_at: 0,
            last_changed_at: 0,
            last_accessed_day: None,
            deleted_at: None,
            purge_at: None,
            rotation_due_at: None,
            extra: serde_json::Value::Null,
            tags: Vec::new(),
            versions: Vec::new(),
            revision: 0,
        }
    }

    fn described(name: &str, d: &str) -> SecretRecord {
        SecretRecord {
            description: Some(d.into()),
            ..secret(name)
        }
    }

    fn tagged(name: &str, tags: &[(&str, &str)]) -> SecretRecord {
        SecretRecord {
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..secret(name)
        }
    }

    fn f(key: &str, values: &[&str]) -> Filter {
        Filter {
            key: Some(key.into()),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn parse(filters: Vec<Filter>) -> Filters {
        Filters::parse(&Some(filters)).expect("valid filters")
    }

    fn parse_err(filters: Vec<Filter>) -> ApiError {
        Filters::parse(&Some(filters)).expect_err("invalid filters")
    }

    /// Names of the secrets the filters keep.
    fn kept<'a>(filters: &Filters, secrets: &'a [SecretRecord]) -> Vec<&'a str> {
        secrets
            .iter()
            .filter(|s| filters.matches(s))
            .map(|s| s.name.as_str())
            .collect()
    }

    // ----- validation -----

    #[test]
    fn no_filters_match_everything() {
        let none = Filters::parse(&None).expect("none");
        let empty = Filters::parse(&Some(Vec::new())).expect("empty");
        assert!(none.is_empty() && empty.is_empty());
        assert!(none.matches(&secret("x")));
        assert_eq!(none.name_prefixes(), None);
    }

    #[test]
    fn every_model_key_is_accepted() {
        for k in [
            "description",
            "name",
            "tag-key",
            "tag-value",
            "primary-region",
            "owning-service",
            "all",
        ] {
            let fs = parse(vec![f(k, &["a"])]);
            assert_eq!(fs.clauses()[0].key.as_str(), k);
        }
    }

    #[test]
    fn unknown_or_miscased_key_is_a_validation_error() {
        for k in ["invalid", "Name", "NAME", "tag_key", "", "tag-key "] {
            let e = parse_err(vec![f(k, &["a"])]);
            assert_eq!(e.code, ErrorCode::Validation, "{k}");
            assert!(e.message.contains("filters.1.member.key"), "{}", e.message);
        }
        let e = parse_err(vec![f("name", &["a"]), f("bogus", &["a"])]);
        assert!(e.message.contains("filters.2.member.key"), "{}", e.message);
    }

    #[test]
    fn missing_key_is_invalid_parameter() {
        let e = parse_err(vec![Filter {
            key: None,
            values: Some(vec!["a".into()]),
        }]);
        assert_eq!(e.code, ErrorCode::InvalidParameter);
        assert_eq!(e.message, "Invalid filter key");
    }

    #[test]
    fn missing_or_empty_values_are_invalid_parameter() {
        let e = parse_err(vec![Filter {
            key: Some("description".into()),
            values: None,
        }]);
        assert_eq!(e.code, ErrorCode::InvalidParameter);
        assert_eq!(e.message, "Invalid filter values for key: description");

        let e = parse_err(vec![f("name", &[])]);
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message.contains("greater than or equal to 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn at_most_ten_filters_and_ten_values() {
        let ten: Vec<Filter> = (0..10).map(|_| f("name", &["a"])).collect();
        assert_eq!(parse(ten).clauses().len(), 10);
        let eleven: Vec<Filter> = (0..11).map(|_| f("name", &["a"])).collect();
        assert_eq!(parse_err(eleven).code, ErrorCode::Validation);

        let vals: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
        assert_eq!(parse(vec![f("name", &refs)]).clauses()[0].values.len(), 10);
        let vals11: Vec<String> = (0..11).map(|i| format!("v{i}")).collect();
        let refs11: Vec<&str> = vals11.iter().map(String::as_str).collect();
        let e = parse_err(vec![f("name", &refs11)]);
        assert!(
            e.message.contains("less than or equal to 10"),
            "{}",
            e.message
        );
    }

    #[test]
    fn value_length_and_pattern_are_enforced() {
        let ok_512 = "a".repeat(512);
        parse(vec![f("name", &[&ok_512])]);
        let long = "a".repeat(513);
        let e = parse_err(vec![f("name", &[&long])]);
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(!e.message.contains(&long), "must not echo the value");

        // Every character of the pattern's class is accepted, including an empty value.
        parse(vec![f(
            "all",
            &["", "!", "!!x", "aZ09 :_@/+=.-!", "prod/db-1", "a=b+c@d.e"],
        )]);
        for bad in ["a*b", "a#b", "tab\t", "naïve", "a,b", "<x>", "a\"b", "(x)"] {
            let e = parse_err(vec![f("name", &[bad])]);
            assert_eq!(e.code, ErrorCode::Validation, "{bad}");
            assert!(e.message.contains("regular expression"), "{}", e.message);
        }
    }

    // ----- name -----

    #[test]
    fn name_is_a_case_sensitive_prefix() {
        // User guide: "Name: Data returns a secret named DatabaseSecret, but not
        // databaseSecret or MyData."
        let secrets = [
            secret("DatabaseSecret"),
            secret("databaseSecret"),
            secret("MyData"),
        ];
        assert_eq!(
            kept(&parse(vec![f("name", &["Data"])]), &secrets),
            ["DatabaseSecret"]
        );
    }

    #[test]
    fn name_negation_keeps_the_others() {
        // localstack issue #4820 / test_list_secrets_filtering (AWS-validated).
        let secrets = [
            secret("testing1/one"),
            secret("/testing2/two"),
            secret("testing3/three"),
            secret("/testing4/four"),
        ];
        assert_eq!(
            kept(&parse(vec![f("name", &["/"])]), &secrets),
            ["/testing2/two", "/testing4/four"]
        );
        assert_eq!(
            kept(&parse(vec![f("name", &["!/"])]), &secrets),
            ["testing1/one", "testing3/three"]
        );
        // A name value is not split into words.
        assert!(kept(&parse(vec![f("name", &["testing1 one"])]), &secrets).is_empty());
    }

    #[test]
    fn values_of_one_key_are_ored() {
        let secrets = [secret("foo"), secret("bar"), secret("baz")];
        assert_eq!(
            kept(&parse(vec![f("name", &["foo", "bar"])]), &secrets),
            ["foo", "bar"]
        );
    }

    #[test]
    fn negated_and_plain_values_of_one_key_combine_as_any_plain_and_no_negated() {
        let secrets = [
            secret("prod/db"),
            secret("prod/test/db"),
            secret("dev/db"),
            secret("test/db"),
        ];
        // Plain values pick candidates, negated values remove from them.
        assert_eq!(
            kept(&parse(vec![f("name", &["prod", "!prod/test"])]), &secrets),
            ["prod/db"]
        );
        // Only negated values: neither prefix.
        assert_eq!(
            kept(&parse(vec![f("name", &["!prod", "!test"])]), &secrets),
            ["dev/db"]
        );
    }

    #[test]
    fn filters_are_anded_also_on_the_same_key() {
        let secrets = [
            described("foo", "one two"),
            described("bar", "one"),
            described("baz", "two"),
            described("qux", "unrelated"),
        ];
        // moto test_with_duplicate_filter_keys.
        assert_eq!(
            kept(
                &parse(vec![f("description", &["one"]), f("description", &["two"])]),
                &secrets
            ),
            ["foo"]
        );
        assert_eq!(
            kept(
                &parse(vec![f("description", &["one"]), f("name", &["b"])]),
                &secrets
            ),
            ["bar"]
        );
    }

    // ----- description -----

    #[test]
    fn description_matches_word_prefixes_case_insensitively() {
        // localstack test_list_secrets_filtering (AWS-validated).
        let secrets = [
            described("s1", "a secret"),
            described("s2", "an secret"),
            described("s3", "asecret"),
            described("s4", "thesecret"),
        ];
        assert_eq!(
            kept(&parse(vec![f("description", &["a"])]), &secrets),
            ["s1", "s2", "s3"]
        );
        assert_eq!(
            kept(&parse(vec![f("description", &["!a"])]), &secrets),
            ["s4"]
        );
        assert_eq!(
            kept(&parse(vec![f("description", &["a secret"])]), &secrets),
            ["s1", "s2"]
        );
        assert_eq!(
            kept(&parse(vec![f("description", &["!c"])]), &secrets),
            ["s1", "s2", "s3", "s4"]
        );
        assert!(kept(
            &parse(vec![f("description", &["a"]), f("name", &["secret"])]),
            &secrets
        )
        .is_empty());
    }

    #[test]
    fn description_example_from_the_user_guide() {
        // "Description: My Description matches secrets with the following descriptions:
        // My Description, my description, My basic description, Description of my secret"
        let secrets = [
            described("a", "My Description"),
            described("b", "my description"),
            described("c", "My basic description"),
            described("d", "Description of my secret"),
            described("e", "Descriptive text"),
            described("f", "Your description"),
        ];
        assert_eq!(
            kept(
                &parse(vec![f("description", &["My Description"])]),
                &secrets
            ),
            ["a", "b", "c", "d"]
        );
    }

    #[test]
    fn description_filter_ignores_secrets_without_description_unless_negated() {
        let secrets = [secret("none"), described("some", "hello")];
        assert_eq!(
            kept(&parse(vec![f("description", &["hel"])]), &secrets),
            ["some"]
        );
        assert_eq!(
            kept(&parse(vec![f("description", &["!hel"])]), &secrets),
            ["none"]
        );
    }

    #[test]
    fn words_split_as_the_user_guide_describes() {
        assert_eq!(words("credsDatabase#892"), ["creds", "database", "892"]);
        assert_eq!(words("My_Secret"), ["my", "secret"]);
        assert_eq!(words("prod/db-1"), ["prod", "db", "1"]);
        assert_eq!(words("HTTPServer2go"), ["http", "server", "2", "go"]);
        assert_eq!(words("  / = "), Vec::<String>::new());
        assert_eq!(words("ABC"), ["abc"]);
    }

    #[test]
    fn a_value_without_words_matches_nothing_on_word_keys() {
        let secrets = [described("x", "anything"), tagged("y", &[("k", "v")])];
        assert!(kept(&parse(vec![f("description", &["/"])]), &secrets).is_empty());
        assert!(kept(&parse(vec![f("all", &[""])]), &secrets).is_empty());
        assert_eq!(kept(&parse(vec![f("all", &["!"])]), &secrets), ["x", "y"]);
    }

    // ----- tags -----

    #[test]
    fn tag_key_and_value_are_case_sensitive_prefixes() {
        // User guide: "Tag key: Prod returns secrets with the tag Production and Prod1,
        // but not secrets with the tag prod or 1 Prod."
        let secrets = [
            tagged("a", &[("Production", "x")]),
            tagged("b", &[("Prod1", "x")]),
            tagged("c", &[("prod", "x")]),
            tagged("d", &[("1 Prod", "x")]),
            secret("e"),
        ];
        assert_eq!(
            kept(&parse(vec![f("tag-key", &["Prod"])]), &secrets),
            ["a", "b"]
        );
        let secrets = [
            tagged("a", &[("k", "Production")]),
            tagged("b", &[("k", "Prod1")]),
            tagged("c", &[("k", "prod")]),
            tagged("d", &[("k", "1 Prod")]),
        ];
        assert_eq!(
            kept(&parse(vec![f("tag-value", &["Prod"])]), &secrets),
            ["a", "b"]
        );
    }

    #[test]
    fn tag_negation_excludes_a_secret_with_any_matching_tag() {
        let secrets = [
            tagged("both", &[("env", "prod"), ("owner", "me")]),
            tagged("other", &[("owner", "me")]),
            secret("untagged"),
        ];
        assert_eq!(
            kept(&parse(vec![f("tag-key", &["!env"])]), &secrets),
            ["other", "untagged"]
        );
    }

    #[test]
    fn tag_key_and_tag_value_filters_need_not_hit_the_same_tag() {
        let secrets = [
            tagged("same", &[("env", "prod")]),
            tagged("split", &[("env", "dev"), ("owner", "prod")]),
            tagged("key-only", &[("env", "dev")]),
            tagged("value-only", &[("x", "prod")]),
        ];
        assert_eq!(
            kept(
                &parse(vec![f("tag-key", &["env"]), f("tag-value", &["prod"])]),
                &secrets
            ),
            ["same", "split"]
        );
    }

    // ----- primary-region, owning-service -----

    #[test]
    fn primary_region_is_a_case_sensitive_prefix_defaulting_to_the_home_region() {
        let replica = SecretRecord {
            region: "eu-west-1".into(),
            primary_region: Some("us-east-1".into()),
            ..secret("replica")
        };
        let local = SecretRecord {
            region: "eu-west-1".into(),
            ..secret("local")
        };
        let secrets = [replica, local];
        assert_eq!(
            kept(&parse(vec![f("primary-region", &["us-"])]), &secrets),
            ["replica"]
        );
        assert_eq!(
            kept(&parse(vec![f("primary-region", &["eu-west"])]), &secrets),
            ["local"]
        );
        assert!(kept(&parse(vec![f("primary-region", &["US"])]), &secrets).is_empty());
    }

    #[test]
    fn owning_service_is_a_case_insensitive_prefix() {
        // User guide: "my-ser matches secrets managed by services with the prefix
        // my-serv and my-service".
        let secrets = [
            SecretRecord {
                owning_service: Some("my-service".into()),
                ..secret("a")
            },
            SecretRecord {
                owning_service: Some("my-serv".into()),
                ..secret("b")
            },
            SecretRecord {
                owning_service: Some("rds".into()),
                ..secret("c")
            },
            secret("d"),
        ];
        assert_eq!(
            kept(&parse(vec![f("owning-service", &["my-ser"])]), &secrets),
            ["a", "b"]
        );
        assert_eq!(
            kept(&parse(vec![f("owning-service", &["MY-SER"])]), &secrets),
            ["a", "b"]
        );
        assert_eq!(
            kept(&parse(vec![f("owning-service", &["!my"])]), &secrets),
            ["c", "d"]
        );
    }

    // ----- all -----

    #[test]
    fn all_searches_name_description_and_tags_case_insensitively() {
        // moto test_with_all_filter.
        let secrets = [
            secret("foo"),
            described("bar", "foo"),
            tagged("baz", &[("foo", "1")]),
            tagged("qux", &[("1", "foo")]),
            tagged("multi", &[("foo", "foo")]),
            secret("none"),
            secret("MyFooBar"),
        ];
        assert_eq!(
            kept(&parse(vec![f("all", &["Foo"])]), &secrets),
            ["foo", "bar", "baz", "qux", "multi", "MyFooBar"]
        );
    }

    #[test]
    fn all_splits_the_value_into_words_found_in_one_field() {
        let secrets = [
            secret("credsDatabase892"),
            described("d", "database creds"),
            // The words are spread over two fields: no match.
            SecretRecord {
                description: Some("creds".into()),
                ..secret("database")
            },
        ];
        assert_eq!(
            kept(&parse(vec![f("all", &["credsDatabase"])]), &secrets),
            ["credsDatabase892", "d"]
        );
        assert_eq!(
            kept(&parse(vec![f("all", &["!creds"])]), &secrets),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn all_does_not_search_region_or_owning_service() {
        let s = SecretRecord {
            owning_service: Some("appflow".into()),
            primary_region: Some("us-west-2".into()),
            ..secret("x")
        };
        assert!(!parse(vec![f("all", &["appflow"])]).matches(&s));
        assert!(!parse(vec![f("all", &["west"])]).matches(&s));
    }

    // ----- index hint -----

    #[test]
    fn name_prefixes_only_for_plain_name_filters() {
        assert_eq!(
            parse(vec![f("name", &["prod/", "dev/"])]).name_prefixes(),
            Some(vec!["dev/".to_owned(), "prod/".to_owned()])
        );
        assert_eq!(
            parse(vec![f("name", &["prod", "prod/db", "!prod/x"])]).name_prefixes(),
            Some(vec!["prod".to_owned()])
        );
        assert_eq!(parse(vec![f("name", &["!prod"])]).name_prefixes(), None);
        assert_eq!(parse(vec![f("name", &["", "a"])]).name_prefixes(), None);
        assert_eq!(parse(vec![f("all", &["prod"])]).name_prefixes(), None);
        assert_eq!(parse(vec![f("description", &["x"])]).name_prefixes(), None);
        // Two name clauses: either is sound; the narrower one is chosen.
        assert_eq!(
            parse(vec![
                f("name", &["a", "b"]),
                f("tag-key", &["env"]),
                f("name", &["ab"])
            ])
            .name_prefixes(),
            Some(vec!["ab".to_owned()])
        );
    }

    #[test]
    fn name_prefixes_never_exclude_a_matching_secret() {
        // Property check over generated names and filters.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = ['a', 'b', 'A', '/', '-'];
        let rand_str = |rng: &mut rand::rngs::StdRng, max: usize| -> String {
            let n = rng.gen_range(0..=max);
            (0..n)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        let secrets: Vec<SecretRecord> = (0..60)
            .map(|_| {
                let name = rand_str(&mut rng, 5);
                tagged(&name, &[("a", "b")])
            })
            .collect();
        for _ in 0..500 {
            let n_clauses = rng.gen_range(1..=3);
            let mut fs = Vec::new();
            for _ in 0..n_clauses {
                let key = ["name", "name", "tag-key", "all"][rng.gen_range(0..4)];
                let vals: Vec<String> = (0..rng.gen_range(1..=3))
                    .map(|_| {
                        let v = rand_str(&mut rng, 3);
                        if rng.gen_bool(0.3) {
                            format!("!{v}")
                        } else {
                            v
                        }
                    })
                    .collect();
                let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                fs.push(f(key, &refs));
            }
            let filters = parse(fs);
            if let Some(prefixes) = filters.name_prefixes() {
                for s in secrets.iter().filter(|s| filters.matches(s)) {
                    assert!(
                        prefixes.iter().any(|p| s.name.starts_with(p.as_str())),
                        "{:?} matches {filters:?} but not prefixes {prefixes:?}",
                        s.name
                    );
                }
            }
        }
    }

    // ----- NextToken -----

    fn cursors() -> Vec<ListCursor> {
        vec![
            ListCursor {
                sort_value: CursorValue::Time(None),
                arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:a-AbCdEf".into(),
            },
            ListCursor {
                sort_value: CursorValue::Time(Some(1_700_000_000_123)),
                arn: "arn:x".into(),
            },
            ListCursor {
                sort_value: CursorValue::Time(Some(-5)),
                arn: String::new(),
            },
            ListCursor {
                sort_value: CursorValue::Name("prod/db+x=y@z.-_".into()),
                arn: "arn:aws:secretsmanager:eu-west-1:1:secret:prod/db+x=y@z.-_-QwErTy".into(),
            },
            ListCursor {
                sort_value: CursorValue::Name("n".repeat(512)),
                arn: "a".repeat(2048),
            },
        ]
    }

    #[test]
    fn token_round_trips_and_is_url_safe() {
        for c in cursors() {
            let t = encode_list_token(&c, 42);
            assert!(
                t.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
                "{t}"
            );
            assert!(!t.is_empty() && t.len() <= MAX_TOKEN_LEN);
            assert_eq!(decode_list_token(&t, 42).expect("round trip"), c);
        }
    }

    #[test]
    fn token_from_another_query_is_invalid_next_token() {
        let t = encode_list_token(&cursors()[1], 42);
        let e = decode_list_token(&t, 43).expect_err("other query");
        assert_eq!(e.code, ErrorCode::InvalidNextToken);
        assert_eq!(e, ApiError::invalid_next_token());
    }

    #[test]
    fn fingerprint_tracks_sort_and_filters_but_not_their_order() {
        let a = parse(vec![f("name", &["x", "y"]), f("tag-key", &["k"])]);
        let b = parse(vec![f("tag-key", &["k"]), f("name", &["y", "x"])]);
        let c = parse(vec![f("name", &["x"]), f("tag-key", &["k"])]);
        let d = parse(vec![f("name", &["!x", "y"]), f("tag-key", &["k"])]);
        let fp = |fs: &Filters, s, desc, del| query_fingerprint(fs, s, desc, del);
        let base = fp(&a, SortBy::CreatedDate, false, false);
        assert_eq!(base, fp(&b, SortBy::CreatedDate, false, false));
        assert_eq!(base, fp(&a, SortBy::CreatedDate, false, false));
        assert_ne!(base, fp(&c, SortBy::CreatedDate, false, false));
        assert_ne!(base, fp(&d, SortBy::CreatedDate, false, false));
        assert_ne!(base, fp(&a, SortBy::Name, false, false));
        assert_ne!(base, fp(&a, SortBy::CreatedDate, true, false));
        assert_ne!(base, fp(&a, SortBy::CreatedDate, false, true));
        assert_ne!(
            base,
            fp(&Filters::default(), SortBy::CreatedDate, false, false)
        );
        // Keys and values can't bleed into each other.
        assert_ne!(
            fp(&parse(vec![f("name", &["ab"])]), SortBy::Name, false, false),
            fp(
                &parse(vec![f("name", &["a", "b"])]),
                SortBy::Name,
                false,
                false
            )
        );
        // Stable across processes: pin one value so a change of encoding is noticed
        // (it would invalidate tokens handed out before an upgrade).
        assert_eq!(
            fp(&Filters::default(), SortBy::CreatedDate, false, false),
            fnv1a64(b"arca.ListSecrets.v1\x00\x00\x00")
        );
    }

    #[test]
    fn garbage_tokens_are_rejected_without_panicking() {
        for t in [
            "",
            "!",
            "====",
            "a",
            "AA",
            "not a token",
            "é",
            "AQ",
            "/+/+",
            &"A".repeat(4097),
        ] {
            let e = decode_list_token(t, 42).expect_err(t);
            assert_eq!(e.code, ErrorCode::InvalidNextToken, "{t:?}");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..5000 {
            let n = rng.gen_range(0..64);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            // As raw text (lossy) and as well-formed base64 of random bytes.
            let _ = decode_list_token(&String::from_utf8_lossy(&bytes), 42);
            let _ = decode_list_token(&URL_SAFE_NO_PAD.encode(&bytes), 42);
            // Random payloads behind a valid header: must fail or decode, never panic.
            let mut framed = vec![TOKEN_V1];
            framed.extend_from_slice(&42u64.to_be_bytes());
            framed.extend_from_slice(&bytes);
            let _ = decode_list_token(&URL_SAFE_NO_PAD.encode(&framed), 42);
        }
    }

    #[test]
    fn truncated_or_extended_tokens_are_rejected() {
        for c in cursors() {
            let t = encode_list_token(&c, 42);
            for cut in 0..t.len() {
                assert!(decode_list_token(&t[..cut], 42).is_err(), "cut {cut}");
            }
            let raw = URL_SAFE_NO_PAD.decode(&t).expect("own token decodes");
            let mut longer = raw.clone();
            longer.push(0);
            assert!(decode_list_token(&URL_SAFE_NO_PAD.encode(&longer), 42).is_err());
            let mut other_version = raw;
            other_version[0] = 2;
            assert!(decode_list_token(&URL_SAFE_NO_PAD.encode(&other_version), 42).is_err());
        }
    }

    #[test]
    fn token_with_invalid_utf8_is_rejected() {
        let mut raw = vec![TOKEN_V1];
        raw.extend_from_slice(&42u64.to_be_bytes());
        raw.push(TAG_NAME);
        raw.extend_from_slice(&2u16.to_be_bytes());
        raw.extend_from_slice(&[0xff, 0xfe]);
        raw.extend_from_slice(&0u16.to_be_bytes());
        assert!(decode_list_token(&URL_SAFE_NO_PAD.encode(&raw), 42).is_err());
    }
}
