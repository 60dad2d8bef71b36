//! End-to-end through the real `aws-sdk-secretsmanager` crate against the spawned `arca`
//! binary (`--dev`, port 0): every operation Arca serves, asserted with the SDK's typed
//! outputs and typed errors, so a wire mistake the SDK would trip over shows up here.
//! Each test starts its own server, so tests are independent and run in parallel.

mod common;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueOutput;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretError;
use aws_sdk_secretsmanager::operation::update_secret_version_stage::UpdateSecretVersionStageError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SortByType, SortOrderType, Tag};
use aws_sdk_secretsmanager::Client;
use aws_smithy_types::Blob;
use common::Server;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn filter(key: FilterNameStringType, values: &[&str]) -> Filter {
    let mut f = Filter::builder().key(key);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

/// DescribeSecret's VersionIdsToStages with each label list sorted.
async fn stages(sm: &Client, id: &str) -> BTreeMap<String, Vec<String>> {
    let d = sm
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("DescribeSecret");
    d.version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v)
        })
        .collect()
}

fn labels(l: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn current_string(sm: &Client, id: &str) -> String {
    sm.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("a SecretString")
        .to_owned()
}

/// Every ListSecrets page of a query, following NextToken; returns names in order.
async fn list_all_names(
    sm: &Client,
    page_size: i32,
    filters: &[Filter],
    sort: Option<(SortByType, SortOrderType)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let mut req = sm
            .list_secrets()
            .max_results(page_size)
            .set_filters((!filters.is_empty()).then(|| filters.to_vec()))
            .set_next_token(token.clone());
        if let Some((by, order)) = &sort {
            req = req.sort_by(by.clone()).sort_order(order.clone());
        }
        let page = req.send().await.expect("ListSecrets");
        assert!(page.secret_list().len() <= page_size as usize);
        out.extend(
            page.secret_list()
                .iter()
                .map(|s| s.name().unwrap_or_default().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
    panic!("ListSecrets never stopped returning NextToken");
}

#[tokio::test]
async fn create_and_get_every_way() {
    let server = Server::dev();
    let sm = server.client(REGION);

    // A string secret with a description and tags.
    let created = sm
        .create_secret()
        .name("app/db")
        .secret_string("s3cr3t")
        .description("the database password")
        .tags(tag("team", "core"))
        .tags(tag("env", "test"))
        .send()
        .await
        .expect("CreateSecret (string)");
    let arn = created.arn().expect("ARN").to_owned();
    let v1 = created.version_id().expect("VersionId").to_owned();
    assert_eq!(created.name(), Some("app/db"));
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:") && arn.contains(":secret:app/db-"),
        "{arn}"
    );
    let suffix = arn.rsplit('-').next().expect("ARN suffix");
    assert_eq!(suffix.len(), 6, "{arn}");
    assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()), "{arn}");

    // By name, full ARN, partial ARN (no random suffix), VersionId, VersionStage.
    let partial = &arn[..arn.len() - 7];
    for id in ["app/db", arn.as_str(), partial] {
        let got = sm
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetSecretValue({id}): {e:?}"));
        assert_eq!(got.secret_string(), Some("s3cr3t"), "{id}");
        assert_eq!(got.arn(), Some(arn.as_str()));
        assert_eq!(got.name(), Some("app/db"));
        assert_eq!(got.version_id(), Some(v1.as_str()));
        assert_eq!(got.version_stages(), ["AWSCURRENT".to_string()]);
        assert!(got.secret_binary().is_none());
        assert!(got.created_date().is_some());
    }
    let by_version = sm
        .get_secret_value()
        .secret_id("app/db")
        .version_id(&v1)
        .send()
        .await
        .expect("GetSecretValue by VersionId");
    assert_eq!(by_version.secret_string(), Some("s3cr3t"));
    let by_stage = sm
        .get_secret_value()
        .secret_id(&arn)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("GetSecretValue by VersionStage");
    assert_eq!(by_stage.version_id(), Some(v1.as_str()));
    let err = sm
        .get_secret_value()
        .secret_id("app/db")
        .version_stage("NOPE")
        .send()
        .await
        .expect_err("an unknown stage")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );

    // A binary secret: bytes that are not UTF-8 come back unchanged.
    let bytes = vec![0u8, 159, 146, 150, 255, b'\n', 1];
    let bin = sm
        .create_secret()
        .name("blob")
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .expect("CreateSecret (binary)");
    let got = sm
        .get_secret_value()
        .secret_id(bin.arn().expect("ARN"))
        .send()
        .await
        .expect("GetSecretValue (binary)");
    assert_eq!(got.secret_binary().map(|b| b.as_ref()), Some(&bytes[..]));
    assert!(got.secret_string().is_none());

    // A secret with no value: no version, and GetSecretValue finds nothing.
    let empty = sm
        .create_secret()
        .name("empty")
        .send()
        .await
        .expect("CreateSecret (no value)");
    assert!(empty.version_id().is_none(), "{empty:?}");
    assert!(stages(&sm, "empty").await.is_empty());
    let err = sm
        .get_secret_value()
        .secret_id("empty")
        .send()
        .await
        .expect_err("no value yet")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );

    // Missing secrets, and a name that is taken.
    let err = sm
        .get_secret_value()
        .secret_id("missing")
        .send()
        .await
        .expect_err("missing")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );
    let err = sm
        .create_secret()
        .name("app/db")
        .secret_string("again")
        .send()
        .await
        .expect_err("duplicate name")
        .into_service_error();
    assert!(
        matches!(err, CreateSecretError::ResourceExistsException(_)),
        "{err:?}"
    );
    // Both a string and a binary value at once is invalid.
    let err = sm
        .create_secret()
        .name("both")
        .secret_string("a")
        .secret_binary(Blob::new(vec![1]))
        .send()
        .await
        .expect_err("both value kinds")
        .into_service_error();
    assert!(
        matches!(err, CreateSecretError::InvalidParameterException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn describe_secret_reports_everything() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let created = sm
        .create_secret()
        .name("described")
        .secret_string("one")
        .description("what it is")
        .tags(tag("a", "1"))
        .tags(tag("b", ""))
        .send()
        .await
        .expect("CreateSecret");
    let v1 = created.version_id().expect("VersionId").to_owned();
    let v2 = sm
        .put_secret_value()
        .secret_id("described")
        .secret_string("two")
        .send()
        .await
        .expect("PutSecretValue")
        .version_id()
        .expect("VersionId")
        .to_owned();

    let d = sm
        .describe_secret()
        .secret_id(created.arn().expect("ARN"))
        .send()
        .await
        .expect("DescribeSecret");
    assert_eq!(d.arn(), created.arn());
    assert_eq!(d.name(), Some("described"));
    assert_eq!(d.description(), Some("what it is"));
    assert!(d.created_date().is_some());
    assert!(d.last_changed_date().is_some());
    assert!(d.deleted_date().is_none());
    assert!(d.created_date() <= d.last_changed_date());
    let tags: BTreeMap<&str, &str> = d
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags, BTreeMap::from([("a", "1"), ("b", "")]));
    let want = BTreeMap::from([
        (v1.clone(), labels(&["AWSPREVIOUS"])),
        (v2.clone(), labels(&["AWSCURRENT"])),
    ]);
    assert_eq!(stages(&sm, "described").await, want);

    let err = sm
        .describe_secret()
        .secret_id("nobody")
        .send()
        .await
        .expect_err("missing")
        .into_service_error();
    assert!(
        matches!(err, DescribeSecretError::ResourceNotFoundException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn batch_get_secret_value_by_ids_and_filters() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let a = sm
        .create_secret()
        .name("batch/a")
        .secret_string("A")
        .send()
        .await
        .expect("CreateSecret a");
    sm.create_secret()
        .name("batch/b")
        .secret_binary(Blob::new(vec![0, b'B']))
        .send()
        .await
        .expect("CreateSecret b");
    sm.create_secret()
        .name("other")
        .secret_string("O")
        .send()
        .await
        .expect("CreateSecret other");

    let out = sm
        .batch_get_secret_value()
        .secret_id_list("batch/a")
        .secret_id_list(a.arn().expect("ARN"))
        .secret_id_list("batch/b")
        .secret_id_list("batch/missing")
        .send()
        .await
        .expect("BatchGetSecretValue by ids");
    let vals = out.secret_values();
    assert_eq!(vals.len(), 3, "{out:?}");
    for v in &vals[..2] {
        assert_eq!(v.name(), Some("batch/a"));
        assert_eq!(v.secret_string(), Some("A"));
        assert_eq!(v.arn(), a.arn());
        assert_eq!(v.version_id(), a.version_id());
        assert_eq!(v.version_stages(), ["AWSCURRENT".to_string()]);
        assert!(v.created_date().is_some());
    }
    assert_eq!(vals[2].name(), Some("batch/b"));
    assert_eq!(
        vals[2].secret_binary().map(|b| b.as_ref()),
        Some(&[0, b'B'][..])
    );
    let errors = out.errors();
    assert_eq!(errors.len(), 1, "{out:?}");
    assert_eq!(errors[0].secret_id(), Some("batch/missing"));
    assert_eq!(errors[0].error_code(), Some("ResourceNotFoundException"));
    assert!(errors[0].message().is_some_and(|m| !m.is_empty()));

    // Filters, paginated one by one: every matching secret exactly once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page: BatchGetSecretValueOutput = sm
            .batch_get_secret_value()
            .filters(filter(FilterNameStringType::Name, &["batch/"]))
            .max_results(1)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("BatchGetSecretValue by filters");
        assert!(page.secret_values().len() <= 1);
        assert!(page.errors().is_empty());
        seen.extend(
            page.secret_values()
                .iter()
                .map(|v| v.name().unwrap_or_default().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
        assert!(seen.len() < 10, "pagination does not end: {seen:?}");
    }
    seen.sort();
    assert_eq!(seen, ["batch/a", "batch/b"]);
}

#[tokio::test]
async fn put_secret_value_moves_staging_labels() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let v1 = sm
        .create_secret()
        .name("p")
        .secret_string("v1")
        .send()
        .await
        .expect("CreateSecret")
        .version_id()
        .expect("VersionId")
        .to_owned();

    // Default: the new version becomes AWSCURRENT, the old one AWSPREVIOUS.
    let put = sm
        .put_secret_value()
        .secret_id("p")
        .secret_string("v2")
        .send()
        .await
        .expect("PutSecretValue");
    let v2 = put.version_id().expect("VersionId").to_owned();
    assert_eq!(put.version_stages(), ["AWSCURRENT".to_string()]);
    assert_eq!(put.name(), Some("p"));
    assert_eq!(
        stages(&sm, "p").await,
        BTreeMap::from([
            (v1.clone(), labels(&["AWSPREVIOUS"])),
            (v2.clone(), labels(&["AWSCURRENT"])),
        ])
    );
    assert_eq!(current_string(&sm, "p").await, "v2");

    // Custom stages move only those labels: AWSCURRENT stays on v2, nothing becomes previous.
    let put = sm
        .put_secret_value()
        .secret_id("p")
        .secret_binary(Blob::new(b"pending".to_vec()))
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("PutSecretValue AWSPENDING");
    let v3 = put.version_id().expect("VersionId").to_owned();
    assert_eq!(put.version_stages(), ["AWSPENDING".to_string()]);
    assert_eq!(
        stages(&sm, "p").await,
        BTreeMap::from([
            (v1.clone(), labels(&["AWSPREVIOUS"])),
            (v2.clone(), labels(&["AWSCURRENT"])),
            (v3.clone(), labels(&["AWSPENDING"])),
        ])
    );
    assert_eq!(current_string(&sm, "p").await, "v2");
    let pending = sm
        .get_secret_value()
        .secret_id("p")
        .version_stage("AWSPENDING")
        .send()
        .await
        .expect("GetSecretValue AWSPENDING");
    assert_eq!(
        pending.secret_binary().map(|b| b.as_ref()),
        Some(&b"pending"[..])
    );

    // A custom label already on v3 moves to v4; v3 keeps nothing and is deprecated.
    let v4 = sm
        .put_secret_value()
        .secret_id("p")
        .secret_string("v4")
        .version_stages("AWSPENDING")
        .version_stages("BLUE")
        .send()
        .await
        .expect("PutSecretValue AWSPENDING+BLUE")
        .version_id()
        .expect("VersionId")
        .to_owned();
    assert_eq!(
        stages(&sm, "p").await,
        BTreeMap::from([
            (v1.clone(), labels(&["AWSPREVIOUS"])),
            (v2.clone(), labels(&["AWSCURRENT"])),
            (v4.clone(), labels(&["AWSPENDING", "BLUE"])),
        ])
    );

    // Idempotency: the same token and value is the same version; a different value is an error.
    let token = "11111111-2222-3333-4444-555555555555";
    let first = sm
        .put_secret_value()
        .secret_id("p")
        .client_request_token(token)
        .secret_string("v5")
        .send()
        .await
        .expect("PutSecretValue with token");
    assert_eq!(first.version_id(), Some(token));
    let again = sm
        .put_secret_value()
        .secret_id("p")
        .client_request_token(token)
        .secret_string("v5")
        .send()
        .await
        .expect("PutSecretValue retried");
    assert_eq!(again.version_id(), Some(token));
    let err = sm
        .put_secret_value()
        .secret_id("p")
        .client_request_token(token)
        .secret_string("different")
        .send()
        .await
        .expect_err("same token, different value")
        .into_service_error();
    assert!(
        matches!(err, PutSecretValueError::ResourceExistsException(_)),
        "{err:?}"
    );
    assert_eq!(current_string(&sm, "p").await, "v5");
    let s = stages(&sm, "p").await;
    assert_eq!(s.get(token), Some(&labels(&["AWSCURRENT"])));
    assert_eq!(s.get(&v2), Some(&labels(&["AWSPREVIOUS"])));
    assert!(!s.contains_key(&v1), "{s:?}");
}

#[tokio::test]
async fn update_secret_description_and_value() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let v1 = sm
        .create_secret()
        .name("u")
        .secret_string("old")
        .description("first")
        .send()
        .await
        .expect("CreateSecret")
        .version_id()
        .expect("VersionId")
        .to_owned();

    // Description only: no new version.
    let out = sm
        .update_secret()
        .secret_id("u")
        .description("second")
        .send()
        .await
        .expect("UpdateSecret description");
    assert_eq!(out.name(), Some("u"));
    assert!(out.version_id().is_none(), "{out:?}");
    let d = sm
        .describe_secret()
        .secret_id("u")
        .send()
        .await
        .expect("DescribeSecret");
    assert_eq!(d.description(), Some("second"));
    assert_eq!(
        stages(&sm, "u").await,
        BTreeMap::from([(v1.clone(), labels(&["AWSCURRENT"]))])
    );

    // With a value: a new AWSCURRENT version.
    let out = sm
        .update_secret()
        .secret_id("u")
        .secret_string("new")
        .send()
        .await
        .expect("UpdateSecret value");
    let v2 = out.version_id().expect("a new VersionId").to_owned();
    assert_ne!(v2, v1);
    assert_eq!(current_string(&sm, "u").await, "new");
    assert_eq!(
        stages(&sm, "u").await,
        BTreeMap::from([
            (v1, labels(&["AWSPREVIOUS"])),
            (v2, labels(&["AWSCURRENT"])),
        ])
    );
    // The description set before survives a value-only update.
    let d = sm
        .describe_secret()
        .secret_id("u")
        .send()
        .await
        .expect("DescribeSecret");
    assert_eq!(d.description(), Some("second"));
}

#[tokio::test]
async fn list_secrets_filters_pagination_and_sort() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let mut all = Vec::new();
    for i in 0..7 {
        let name = format!("svc/{i:02}");
        sm.create_secret()
            .name(&name)
            .secret_string("x")
            .description(if i % 2 == 0 { "even one" } else { "odd one" })
            .tags(tag("parity", if i % 2 == 0 { "even" } else { "odd" }))
            .send()
            .await
            .expect("CreateSecret");
        all.push(name);
    }
    for name in ["zeta", "alpha"] {
        sm.create_secret()
            .name(name)
            .secret_string("x")
            .send()
            .await
            .expect("CreateSecret");
        all.push(name.to_owned());
    }
    all.sort();

    // Pagination with every page size collects every secret exactly once.
    for size in [1, 2, 3, 100] {
        let mut got = list_all_names(&sm, size, &[], None).await;
        assert_eq!(got.len(), all.len(), "page size {size}: {got:?}");
        got.sort();
        assert_eq!(got, all, "page size {size}");
    }

    // Sorted by name, both ways, across pages.
    let asc = list_all_names(&sm, 2, &[], Some((SortByType::Name, SortOrderType::Asc))).await;
    assert_eq!(asc, all);
    let desc = list_all_names(&sm, 4, &[], Some((SortByType::Name, SortOrderType::Desc))).await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(desc, reversed);

    // Filters.
    let by_name = list_all_names(
        &sm,
        2,
        &[filter(FilterNameStringType::Name, &["svc/"])],
        None,
    )
    .await
    .into_iter()
    .collect::<BTreeSet<_>>();
    assert_eq!(by_name.len(), 7);
    let odd = list_all_names(
        &sm,
        10,
        &[filter(FilterNameStringType::TagValue, &["odd"])],
        None,
    )
    .await
    .into_iter()
    .collect::<BTreeSet<_>>();
    assert_eq!(
        odd,
        ["svc/01", "svc/03", "svc/05"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let even_desc = list_all_names(
        &sm,
        10,
        &[
            filter(FilterNameStringType::Description, &["even"]),
            filter(FilterNameStringType::TagKey, &["parity"]),
        ],
        Some((SortByType::Name, SortOrderType::Asc)),
    )
    .await;
    assert_eq!(even_desc, ["svc/00", "svc/02", "svc/04", "svc/06"]);
    let negated = list_all_names(
        &sm,
        10,
        &[filter(FilterNameStringType::Name, &["!svc/"])],
        Some((SortByType::Name, SortOrderType::Asc)),
    )
    .await;
    assert_eq!(negated, ["alpha", "zeta"]);

    // Entries carry their metadata.
    let page = sm
        .list_secrets()
        .filters(filter(FilterNameStringType::Name, &["svc/00"]))
        .send()
        .await
        .expect("ListSecrets");
    let e = &page.secret_list()[0];
    assert_eq!(e.name(), Some("svc/00"));
    assert_eq!(e.description(), Some("even one"));
    assert!(e.arn().is_some_and(|a| a.contains(":secret:svc/00-")));
    assert!(e.created_date().is_some());
    assert_eq!(e.tags().len(), 1);
    assert_eq!(
        e.secret_versions_to_stages().map(|m| m.len()),
        Some(1),
        "{e:?}"
    );
}

#[tokio::test]
async fn list_secret_version_ids_and_deprecated_versions() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let v1 = sm
        .create_secret()
        .name("lv")
        .secret_string("1")
        .send()
        .await
        .expect("CreateSecret")
        .version_id()
        .expect("VersionId")
        .to_owned();
    let mut ids = vec![v1.clone()];
    for i in 2..=3 {
        let out = sm
            .put_secret_value()
            .secret_id("lv")
            .secret_string(i.to_string())
            .send()
            .await
            .expect("PutSecretValue");
        ids.push(out.version_id().expect("VersionId").to_owned());
    }
    let listed = sm
        .list_secret_version_ids()
        .secret_id("lv")
        .send()
        .await
        .expect("ListSecretVersionIds");
    assert_eq!(listed.name(), Some("lv"));
    assert!(listed.arn().is_some());
    let got: BTreeMap<String, Vec<String>> = listed
        .versions()
        .iter()
        .map(|v| {
            assert!(v.created_date().is_some());
            (
                v.version_id().unwrap_or_default().to_owned(),
                v.version_stages().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            (ids[1].clone(), labels(&["AWSPREVIOUS"])),
            (ids[2].clone(), labels(&["AWSCURRENT"])),
        ])
    );

    let with_deprecated = sm
        .list_secret_version_ids()
        .secret_id("lv")
        .include_deprecated(true)
        .send()
        .await
        .expect("ListSecretVersionIds IncludeDeprecated");
    let all: BTreeMap<String, Vec<String>> = with_deprecated
        .versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap_or_default().to_owned(),
                v.version_stages().to_vec(),
            )
        })
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all.get(&v1), Some(&Vec::new()));
    // A deprecated version is still readable by its id.
    let old = sm
        .get_secret_value()
        .secret_id("lv")
        .version_id(&v1)
        .send()
        .await
        .expect("GetSecretValue deprecated version");
    assert_eq!(old.secret_string(), Some("1"));
    assert!(old.version_stages().is_empty(), "{old:?}");

    // Paginated, one version per page.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id("lv")
            .include_deprecated(true)
            .max_results(1)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListSecretVersionIds page");
        seen.extend(
            page.versions()
                .iter()
                .map(|v| v.version_id().unwrap_or_default().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
        assert!(seen.len() < 10, "pagination does not end: {seen:?}");
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn update_secret_version_stage_moves_and_validates() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let v1 = sm
        .create_secret()
        .name("st")
        .secret_string("S1")
        .send()
        .await
        .expect("CreateSecret")
        .version_id()
        .expect("VersionId")
        .to_owned();
    let v2 = sm
        .put_secret_value()
        .secret_id("st")
        .secret_string("S2")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("PutSecretValue")
        .version_id()
        .expect("VersionId")
        .to_owned();

    // AWSCURRENT is on v1: moving it without RemoveFromVersionId is refused.
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .send()
        .await
        .expect_err("RemoveFromVersionId is missing")
        .into_service_error();
    assert!(
        matches!(
            err,
            UpdateSecretVersionStageError::InvalidParameterException(_)
        ),
        "{err:?}"
    );
    // A RemoveFromVersionId that does not hold the label is refused too.
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .remove_from_version_id(&v2)
        .send()
        .await
        .expect_err("RemoveFromVersionId does not hold the label")
        .into_service_error();
    assert!(
        matches!(
            err,
            UpdateSecretVersionStageError::InvalidParameterException(_)
        ),
        "{err:?}"
    );
    assert_eq!(
        stages(&sm, "st").await,
        BTreeMap::from([
            (v1.clone(), labels(&["AWSCURRENT"])),
            (v2.clone(), labels(&["AWSPENDING"])),
        ])
    );

    // Moving AWSCURRENT: the old holder gets AWSPREVIOUS.
    let out = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .remove_from_version_id(&v1)
        .send()
        .await
        .expect("UpdateSecretVersionStage AWSCURRENT");
    assert_eq!(out.name(), Some("st"));
    assert!(out.arn().is_some());
    assert_eq!(
        stages(&sm, "st").await,
        BTreeMap::from([
            (v1.clone(), labels(&["AWSPREVIOUS"])),
            (v2.clone(), labels(&["AWSCURRENT", "AWSPENDING"])),
        ])
    );
    assert_eq!(current_string(&sm, "st").await, "S2");

    // A new custom label is added; removing one needs only RemoveFromVersionId.
    sm.update_secret_version_stage()
        .secret_id("st")
        .version_stage("GREEN")
        .move_to_version_id(&v1)
        .send()
        .await
        .expect("attach GREEN");
    assert_eq!(
        stages(&sm, "st").await.get(&v1),
        Some(&labels(&["AWSPREVIOUS", "GREEN"]))
    );
    sm.update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSPENDING")
        .remove_from_version_id(&v2)
        .send()
        .await
        .expect("remove AWSPENDING");
    assert_eq!(
        stages(&sm, "st").await,
        BTreeMap::from([
            (v1, labels(&["AWSPREVIOUS", "GREEN"])),
            (v2, labels(&["AWSCURRENT"])),
        ])
    );
}

/// CreateSecret, retrying while a force-deleted name is still being purged (AWS documents
/// force deletion as asynchronous).
async fn create_after_purge(sm: &Client, name: &str, value: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sm
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
        {
            Ok(out) => return out.arn().expect("ARN").to_owned(),
            Err(e) => {
                let e = e.into_service_error();
                assert!(
                    matches!(e, CreateSecretError::InvalidRequestException(_))
                        && Instant::now() < deadline,
                    "CreateSecret after force deletion: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn delete_restore_and_force_delete() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let arn = sm
        .create_secret()
        .name("del")
        .secret_string("keep me")
        .send()
        .await
        .expect("CreateSecret")
        .arn()
        .expect("ARN")
        .to_owned();

    // A recovery window: DeletedDate shows, the value is out of reach, the list hides it.
    let out = sm
        .delete_secret()
        .secret_id("del")
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("DeleteSecret with window");
    assert_eq!(out.arn(), Some(arn.as_str()));
    let deletion = out.deletion_date().expect("DeletionDate");
    let d = sm
        .describe_secret()
        .secret_id("del")
        .send()
        .await
        .expect("DescribeSecret scheduled");
    let created = d.created_date().expect("CreatedDate");
    assert!(d.deleted_date().is_some(), "{d:?}");
    let window = deletion.secs() - created.secs();
    assert!(
        (7 * 86400 - 120..=7 * 86400 + 120).contains(&window),
        "{window}"
    );
    let err = sm
        .get_secret_value()
        .secret_id("del")
        .send()
        .await
        .expect_err("scheduled for deletion")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::InvalidRequestException(_)),
        "{err:?}"
    );
    assert!(list_all_names(&sm, 10, &[], None).await.is_empty());
    let planned = sm
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .expect("ListSecrets IncludePlannedDeletion");
    assert_eq!(planned.secret_list().len(), 1);
    assert!(planned.secret_list()[0].deleted_date().is_some());
    let err = sm
        .delete_secret()
        .secret_id("del")
        .recovery_window_in_days(7)
        .send()
        .await
        .expect_err("deleting twice")
        .into_service_error();
    assert!(
        matches!(err, DeleteSecretError::InvalidRequestException(_)),
        "{err:?}"
    );

    // Restore brings it back unchanged.
    let restored = sm
        .restore_secret()
        .secret_id("del")
        .send()
        .await
        .expect("RestoreSecret");
    assert_eq!(restored.arn(), Some(arn.as_str()));
    assert_eq!(restored.name(), Some("del"));
    let d = sm
        .describe_secret()
        .secret_id("del")
        .send()
        .await
        .expect("DescribeSecret restored");
    assert!(d.deleted_date().is_none(), "{d:?}");
    assert_eq!(current_string(&sm, "del").await, "keep me");

    // Window bounds.
    let err = sm
        .delete_secret()
        .secret_id("del")
        .recovery_window_in_days(6)
        .send()
        .await
        .expect_err("window below 7 days")
        .into_service_error();
    assert!(
        matches!(err, DeleteSecretError::InvalidParameterException(_)),
        "{err:?}"
    );

    // Force deletion, then the same name again: a new secret with a new ARN suffix.
    let out = sm
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("DeleteSecret force");
    assert_eq!(out.name(), Some("del"));
    let second = create_after_purge(&sm, "del", "fresh").await;
    assert_ne!(second, arn);
    assert_eq!(
        second[..second.len() - 7],
        arn[..arn.len() - 7],
        "same name, same partial ARN"
    );
    assert_eq!(current_string(&sm, "del").await, "fresh");
    let err = sm
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .expect_err("the old ARN names the old secret")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );

    // The window ends by itself once the clock passes it (dev clock + purge).
    sm.delete_secret()
        .secret_id("del")
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("DeleteSecret with window");
    server.advance_clock(7 * 86400 + 60).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sm.describe_secret().secret_id("del").send().await {
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeSecretError::ResourceNotFoundException(_))
                ) =>
            {
                break
            }
            Err(e) => panic!("DescribeSecret: {e:?}"),
            Ok(_) => {
                assert!(Instant::now() < deadline, "the purge did not run");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn tag_and_untag_resource() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let arn = sm
        .create_secret()
        .name("tagged")
        .secret_string("x")
        .tags(tag("keep", "1"))
        .send()
        .await
        .expect("CreateSecret")
        .arn()
        .expect("ARN")
        .to_owned();
    async fn tags(sm: &Client, id: &str) -> BTreeMap<String, String> {
        sm.describe_secret()
            .secret_id(id)
            .send()
            .await
            .expect("DescribeSecret")
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
    sm.tag_resource()
        .secret_id("tagged")
        .tags(tag("env", "prod"))
        .tags(tag("keep", "2"))
        .send()
        .await
        .expect("TagResource");
    assert_eq!(
        tags(&sm, "tagged").await,
        BTreeMap::from([("env".into(), "prod".into()), ("keep".into(), "2".into())])
    );
    sm.untag_resource()
        .secret_id(&arn)
        .tag_keys("env")
        .tag_keys("absent")
        .send()
        .await
        .expect("UntagResource");
    assert_eq!(
        tags(&sm, "tagged").await,
        BTreeMap::from([("keep".into(), "2".into())])
    );
    // Tag filters see the change.
    let found = list_all_names(
        &sm,
        10,
        &[filter(FilterNameStringType::TagKey, &["env"])],
        None,
    )
    .await;
    assert!(found.is_empty(), "{found:?}");
    let err = sm
        .tag_resource()
        .secret_id("nobody")
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("missing secret");
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("ResourceNotFoundException"),
        "{err:?}"
    );
}

#[tokio::test]
async fn get_random_password() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let p = sm
        .get_random_password()
        .send()
        .await
        .expect("GetRandomPassword");
    let pw = p.random_password().expect("RandomPassword");
    assert_eq!(pw.chars().count(), 32, "default length");

    let p = sm
        .get_random_password()
        .password_length(40)
        .exclude_punctuation(true)
        .exclude_characters("abc")
        .require_each_included_type(true)
        .send()
        .await
        .expect("GetRandomPassword with options");
    let pw = p.random_password().expect("RandomPassword");
    assert_eq!(pw.len(), 40);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");
    assert!(!pw.contains(['a', 'b', 'c']), "{pw}");
    assert!(pw.chars().any(|c| c.is_ascii_uppercase()), "{pw}");
    assert!(pw.chars().any(|c| c.is_ascii_lowercase()), "{pw}");
    assert!(pw.chars().any(|c| c.is_ascii_digit()), "{pw}");

    let p = sm
        .get_random_password()
        .password_length(12)
        .exclude_lowercase(true)
        .exclude_uppercase(true)
        .exclude_punctuation(true)
        .include_space(false)
        .send()
        .await
        .expect("digits only");
    let pw = p.random_password().expect("RandomPassword");
    assert!(
        pw.len() == 12 && pw.chars().all(|c| c.is_ascii_digit()),
        "{pw}"
    );

    // Two calls differ.
    let a = sm.get_random_password().send().await.expect("a");
    let b = sm.get_random_password().send().await.expect("b");
    assert_ne!(a.random_password(), b.random_password());

    let err = sm
        .get_random_password()
        .password_length(0)
        .send()
        .await
        .expect_err("length 0");
    let code = err.as_service_error().and_then(|e| e.code());
    assert!(
        matches!(
            code,
            Some("InvalidParameterException") | Some("ValidationException")
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn regions_are_separate_namespaces() {
    let server = Server::dev();
    let east = server.client("us-east-1");
    let west = server.client("eu-west-1");
    let a = east
        .create_secret()
        .name("shared/name")
        .secret_string("east value")
        .send()
        .await
        .expect("CreateSecret us-east-1");
    let b = west
        .create_secret()
        .name("shared/name")
        .secret_string("west value")
        .send()
        .await
        .expect("CreateSecret eu-west-1");
    let (a, b) = (a.arn().expect("ARN"), b.arn().expect("ARN"));
    assert!(a.starts_with("arn:aws:secretsmanager:us-east-1:"), "{a}");
    assert!(b.starts_with("arn:aws:secretsmanager:eu-west-1:"), "{b}");
    assert_eq!(current_string(&east, "shared/name").await, "east value");
    assert_eq!(current_string(&west, "shared/name").await, "west value");

    let only_east = east
        .create_secret()
        .name("east/only")
        .secret_string("e")
        .send()
        .await
        .expect("CreateSecret");
    let err = west
        .get_secret_value()
        .secret_id("east/only")
        .send()
        .await
        .expect_err("not in eu-west-1")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );
    // Not even by the full ARN of the other region.
    let err = west
        .get_secret_value()
        .secret_id(only_east.arn().expect("ARN"))
        .send()
        .await
        .expect_err("another region's ARN");
    assert!(err.as_service_error().is_some(), "{err:?}");
    assert_eq!(list_all_names(&west, 10, &[], None).await, ["shared/name"]);
    let mut east_names = list_all_names(&east, 10, &[], None).await;
    east_names.sort();
    assert_eq!(east_names, ["east/only", "shared/name"]);
}

#[tokio::test]
async fn rotate_secret_without_a_function_is_refused_and_harmless() {
    let server = Server::dev();
    let sm = server.client(REGION);
    sm.create_secret()
        .name("rot")
        .secret_string("before")
        .send()
        .await
        .expect("CreateSecret");
    let err = sm
        .rotate_secret()
        .secret_id("rot")
        .rotate_immediately(true)
        .send()
        .await
        .expect_err("RotateSecret without a rotation function");
    let message = err.as_service_error().and_then(|e| e.message());
    assert!(
        message.is_some_and(|m| m.contains("No Lambda rotation function ARN is associated")),
        "{err:?}"
    );
    assert!(
        matches!(
            err.into_service_error(),
            RotateSecretError::InvalidRequestException(_)
        ),
        "RotateSecret should be an InvalidRequestException"
    );
    // A function ARN nothing is bound to is refused too, as AWS refuses a function it
    // can't invoke: AccessDeniedException (not modelled, so a generic error).
    let err = sm
        .rotate_secret()
        .secret_id("rot")
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:nothing-bound")
        .send()
        .await
        .expect_err("RotateSecret with an unbound function");
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException"),
        "{err:?}"
    );
    // The server still works, and the secret is untouched.
    assert_eq!(current_string(&sm, "rot").await, "before");
    sm.put_secret_value()
        .secret_id("rot")
        .secret_string("after")
        .send()
        .await
        .expect("PutSecretValue after RotateSecret");
    assert_eq!(current_string(&sm, "rot").await, "after");
}

#[tokio::test]
async fn dev_reset_wipes_secrets() {
    let server = Server::dev();
    let sm = server.client(REGION);
    sm.create_secret()
        .name("gone-after-reset")
        .secret_string("x")
        .send()
        .await
        .expect("CreateSecret");
    server.dev_reset().await;
    assert!(list_all_names(&sm, 10, &[], None).await.is_empty());
    let err = sm
        .get_secret_value()
        .secret_id("gone-after-reset")
        .send()
        .await
        .expect_err("wiped")
        .into_service_error();
    assert!(
        matches!(err, GetSecretValueError::ResourceNotFoundException(_)),
        "{err:?}"
    );
}

/// Regression: concurrent writes to one secret lost their optimistic-concurrency race 16
/// times in a row and the caller got a 500 InternalServiceError. Every write must commit
/// (the server is one process; it can serialise them), and the labels stay consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_put_secret_value_never_fails_with_internal_error() {
    const WRITERS: usize = 40;
    let server = Server::dev();
    let sm = server.client(REGION);
    sm.create_secret()
        .name("busy")
        .secret_string("v0")
        .send()
        .await
        .expect("CreateSecret");
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let sm = sm.clone();
        tasks.push(tokio::spawn(async move {
            sm.put_secret_value()
                .secret_id("busy")
                .secret_string(format!("v{}", i + 1))
                .send()
                .await
                .map(|o| o.version_id().unwrap_or_default().to_owned())
                .map_err(|e| {
                    format!(
                        "{:?}: {:?}",
                        e.as_service_error().and_then(|e| e.code()),
                        e.as_service_error().and_then(|e| e.message())
                    )
                })
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("writer task") {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {WRITERS} concurrent PutSecretValue calls failed: {failures:?}",
        failures.len()
    );
    let s = stages(&sm, "busy").await;
    let all: Vec<&String> = s.values().flatten().collect();
    assert_eq!(
        all.iter().filter(|l| **l == "AWSCURRENT").count(),
        1,
        "{s:?}"
    );
    assert_eq!(
        all.iter().filter(|l| **l == "AWSPREVIOUS").count(),
        1,
        "{s:?}"
    );
    let versions = sm
        .list_secret_version_ids()
        .secret_id("busy")
        .include_deprecated(true)
        .max_results(100)
        .send()
        .await
        .expect("ListSecretVersionIds");
    assert_eq!(versions.versions().len(), WRITERS + 1);
}
