"""ListSecrets: filters (every key, negation), IncludePlannedDeletion, sorting,
MaxResults bounds, pagination that survives concurrent changes, bad NextToken."""

import pytest

from helpers import VALIDATION_CODES, expect_error, list_all, names

DAY = 86400


def f(key, *values):
    return {"Key": key, "Values": list(values)}


@pytest.fixture
def catalog(sm):
    sm.create_secret(Name="prod/db", SecretString="x", Description="Primary database for orders",
                     Tags=[{"Key": "Env", "Value": "production"}, {"Key": "team", "Value": "core"}])
    sm.create_secret(Name="production-cache", SecretString="x", Description="cache cluster",
                     Tags=[{"Key": "Env", "Value": "prodlike"}])
    sm.create_secret(Name="Prod/upper", SecretString="x", Description="PRIMARY upper-case",
                     Tags=[{"Key": "env", "Value": "Production"}])
    sm.create_secret(Name="dev/db", SecretString="x", Description="the primary dev database",
                     Tags=[{"Key": "team", "Value": "web"}])
    sm.create_secret(Name="my-prod", SecretString="x")
    return {"prod/db", "production-cache", "Prod/upper", "dev/db", "my-prod"}


def listed(sm, *filters, **kw):
    return set(names(list_all(sm, Filters=list(filters), **kw)))


def test_list_all_and_entry_fields(sm, catalog):
    entries = list_all(sm)
    assert set(names(entries)) == catalog
    e = {x["Name"]: x for x in entries}["prod/db"]
    assert e["ARN"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-")
    assert e["Description"] == "Primary database for orders"
    assert sorted(e["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "Env", "Value": "production"}, {"Key": "team", "Value": "core"}]
    assert list(e["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    assert "CreatedDate" in e and "LastChangedDate" in e
    assert "KmsKeyId" not in e


def test_filter_name_prefix_case_sensitive(sm, catalog):
    # Documented: name - prefix match, case-sensitive.
    assert listed(sm, f("name", "prod")) == {"prod/db", "production-cache"}
    assert listed(sm, f("name", "Prod")) == {"Prod/upper"}
    assert listed(sm, f("name", "prod/db")) == {"prod/db"}
    assert listed(sm, f("name", "nomatch")) == set()


def test_filter_name_negation(sm, catalog):
    assert listed(sm, f("name", "!prod")) == catalog - {"prod/db", "production-cache"}


def test_filter_multiple_values_are_or(sm, catalog):
    # Not spelled out in the docs: several values of one key match any of them.
    assert listed(sm, f("name", "dev", "my-")) == {"dev/db", "my-prod"}


def test_filters_with_different_keys_are_and(sm, catalog):
    # Not spelled out in the docs: several filters must all match.
    assert listed(sm, f("name", "prod"), f("tag-key", "team")) == {"prod/db"}


def test_filter_description_word_prefix_case_insensitive(sm, catalog):
    # The user guide ("Find secrets"): description "matches the words in secret
    # descriptions, not case-sensitive"; tests LocalStack validated against AWS show each
    # word of the value is a prefix of a word of the description.
    assert listed(sm, f("description", "primary")) == {"prod/db", "Prod/upper", "dev/db"}
    assert listed(sm, f("description", "PRIMARY DATA")) == {"prod/db", "dev/db"}
    assert listed(sm, f("description", "!primary")) == {"production-cache", "my-prod"}


def test_filter_tag_key_prefix_case_sensitive(sm, catalog):
    assert listed(sm, f("tag-key", "Env")) == {"prod/db", "production-cache"}
    assert listed(sm, f("tag-key", "env")) == {"Prod/upper"}
    assert listed(sm, f("tag-key", "te")) == {"prod/db", "dev/db"}
    assert listed(sm, f("tag-key", "!team")) == {"production-cache", "Prod/upper", "my-prod"}


def test_filter_tag_value_prefix_case_sensitive(sm, catalog):
    assert listed(sm, f("tag-value", "prod")) == {"prod/db", "production-cache"}
    assert listed(sm, f("tag-value", "Prod")) == {"Prod/upper"}
    assert listed(sm, f("tag-value", "core")) == {"prod/db"}


def test_filter_primary_region_and_owning_service(sm, catalog):
    # None of these secrets is replicated or owned by another service; the filters are
    # accepted and a value nothing has matches nothing.
    assert listed(sm, f("primary-region", "eu-central-9")) == set()
    assert listed(sm, f("owning-service", "rds")) == set()


def test_filter_all_words_case_insensitive(sm, catalog):
    # Documented: all - breaks the value into words and searches every attribute
    # (name, description, tag keys and values); not case-sensitive.
    assert listed(sm, f("all", "CACHE")) == {"production-cache"}
    assert "prod/db" in listed(sm, f("all", "orders"))
    assert "dev/db" in listed(sm, f("all", "web"))
    assert listed(sm, f("all", "zzzunmatched")) == set()


def test_invalid_filter_key_rejected(sm_raw, catalog):
    expect_error(VALIDATION_CODES, sm_raw.list_secrets, Filters=[f("colour", "red")])


def test_include_planned_deletion(sm, catalog):
    sm.delete_secret(SecretId="dev/db")
    assert listed(sm) == catalog - {"dev/db"}
    assert listed(sm, IncludePlannedDeletion=True) == catalog
    assert listed(sm, f("name", "dev"), IncludePlannedDeletion=True) == {"dev/db"}


def _make_ordered(server, sm, count=4):
    made = []
    for i in range(count):
        name = f"s{(count - i) % count}-{i}"  # name order differs from creation order
        sm.create_secret(Name=name, SecretString="x")
        made.append(name)
        server.advance_clock(2)  # distinct CreatedDate values
    return made


def test_sort_by_created_date(server, sm):
    made = _make_ordered(server, sm)
    assert names(list_all(sm, SortBy="created-date", SortOrder="asc")) == made
    assert names(list_all(sm, SortBy="created-date", SortOrder="desc")) == made[::-1]


def test_sort_by_name(server, sm):
    made = _make_ordered(server, sm)
    assert names(list_all(sm, SortBy="name", SortOrder="asc")) == sorted(made)
    assert names(list_all(sm, SortBy="name", SortOrder="desc")) == sorted(made, reverse=True)


def test_sort_by_last_changed_date(server, sm):
    made = _make_ordered(server, sm)
    sm.update_secret(SecretId=made[0], Description="changed last")
    expected = made[1:] + made[:1]
    assert names(list_all(sm, SortBy="last-changed-date", SortOrder="asc")) == expected
    assert names(list_all(sm, SortBy="last-changed-date", SortOrder="desc")) == expected[::-1]


def test_sort_by_last_accessed_date(server, sm):
    made = _make_ordered(server, sm, count=3)
    # LastAccessedDate has day granularity: access each secret on a different day.
    order = [made[2], made[0], made[1]]
    for name in order:
        sm.get_secret_value(SecretId=name)
        server.advance_clock(DAY)
    assert names(list_all(sm, SortBy="last-accessed-date", SortOrder="asc")) == order
    assert names(list_all(sm, SortBy="last-accessed-date", SortOrder="desc")) == order[::-1]


def test_sort_with_pagination(server, sm):
    made = _make_ordered(server, sm, count=5)
    got = names(list_all(sm, SortBy="name", SortOrder="desc", MaxResults=2))
    assert got == sorted(made, reverse=True)


def test_max_results_bounds(sm, sm_raw):
    for i in range(3):
        sm.create_secret(Name=f"m{i}", SecretString="x")
    page = sm.list_secrets(MaxResults=1)
    assert len(page["SecretList"]) == 1 and page.get("NextToken")
    assert len(sm.list_secrets(MaxResults=100)["SecretList"]) == 3
    expect_error(VALIDATION_CODES, sm_raw.list_secrets, MaxResults=0)
    expect_error(VALIDATION_CODES, sm_raw.list_secrets, MaxResults=101)


def test_no_next_token_on_last_page(sm):
    sm.create_secret(Name="only", SecretString="x")
    page = sm.list_secrets(MaxResults=5)
    assert names(page["SecretList"]) == ["only"]
    assert "NextToken" not in page


def test_invalid_next_token(sm):
    sm.create_secret(Name="a", SecretString="x")
    expect_error("InvalidNextTokenException", sm.list_secrets, NextToken="not-a-real-token")


@pytest.mark.parametrize("sort", [{}, {"SortBy": "name", "SortOrder": "asc"},
                                  {"SortBy": "created-date", "SortOrder": "desc"}])
def test_pagination_stable_under_concurrent_changes(server, sm, sort):
    pre = [f"pre-{i:02d}" for i in range(20)]
    for n in pre:
        sm.create_secret(Name=n, SecretString="x")
        server.advance_clock(1)
    seen: list[str] = []
    deleted: set[str] = set()
    next_token = None
    added = 0
    while True:
        kwargs = dict(sort, MaxResults=6)
        if next_token:
            kwargs["NextToken"] = next_token
        page = sm.list_secrets(**kwargs)
        assert len(page["SecretList"]) <= 6
        seen += names(page["SecretList"])
        next_token = page.get("NextToken")
        if not next_token:
            break
        # Between pages: add secrets that sort both before and after the cursor, and
        # delete secrets already returned.
        for name in (f"aaa-new-{added}", f"zzz-new-{added}"):
            sm.create_secret(Name=name, SecretString="x")
        added += 1
        victim = seen[-1]
        if victim.startswith("pre-") and victim not in deleted:
            sm.delete_secret(SecretId=victim, ForceDeleteWithoutRecovery=True)
            deleted.add(victim)
        server.advance_clock(1)
    pre_seen = [n for n in seen if n.startswith("pre-")]
    assert sorted(pre_seen) == pre, "every pre-existing secret exactly once"
    assert len(seen) == len(set(seen)), "no secret returned twice"
    assert deleted  # the test did mutate between pages


def test_pagination_with_filters(sm):
    for i in range(7):
        sm.create_secret(Name=f"app/{i}", SecretString="x")
        sm.create_secret(Name=f"other/{i}", SecretString="x")
    got = names(list_all(sm, Filters=[f("name", "app/")], MaxResults=3))
    assert sorted(got) == [f"app/{i}" for i in range(7)]
