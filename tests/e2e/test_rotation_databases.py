"""The built-in database rotators through RotateSecret against the real PostgreSQL
(127.0.0.1:5432) and MariaDB (127.0.0.1:3306) (issue 3). Each test creates randomly named
users with the admin connection, stores their credentials as a secret, rotates through
the API and checks the database: single user, the new password logs in and the old one
no longer does; alternating users, both users exist with identical privileges and a client
reconnecting with whatever AWSCURRENT holds never fails to log in over two rotations.
Also a database that is down (a proxy not listening): the rotation fails at setSecret,
AWSCURRENT still works, and once the database is back a retry completes the same version.

PostgreSQL trusts 127.0.0.1 logins here; `ensure_pg_password_auth` makes members of the
role arca_rotation_test (every role these tests create) log in with a password."""

from __future__ import annotations

import json

import pytest

from helpers import token
from rotation_helpers import (MY_DB, PG_GROUP, PG_PORT, LoginLoop, Proxy, ensure_pg_password_auth,
                              fn_arn, json_value, my_grants, my_login_ok, my_secret, my_sql,
                              pg_admin, pg_login_ok, pg_secret, random_name, random_password,
                              stage_holder, start_server, stop_server, toml_function)

KINDS = ["postgres-single-user", "postgres-alternating-users", "mysql-single-user",
         "mysql-alternating-users"]
FN = {k: fn_arn(f"arca-e2e-{k}") for k in KINDS}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = "".join(toml_function(FN[k], type="builtin", kind=k,
                                   options={"connect_timeout_secs": 3}) for k in KINDS)
    srv = start_server(tmp_path_factory.mktemp("arca-rot-db"), config)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def pg():
    ensure_pg_password_auth()
    with pg_admin() as c:
        yield c


@pytest.fixture(scope="module")
def my():
    my_sql(f"CREATE DATABASE IF NOT EXISTS {MY_DB}")
    yield


@pytest.fixture
def sm(server):
    return server.client()


def rotate(server, sm, arn, kind, n, **kwargs):
    tok = token()
    r = sm.rotate_secret(SecretId=arn, RotationLambdaARN=FN[kind], ClientRequestToken=tok, **kwargs)
    assert r["VersionId"] == tok
    ok = server.wait_event(arn, "RotationSucceeded", count=n, timeout=20)
    assert ok["versionId"] == tok
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    return tok


# ---------- single user ----------

def test_postgres_single_user(server, sm, pg):
    user, pw0 = random_name("arca_e2e_pg"), random_password()
    pg.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{pw0}' IN ROLE {PG_GROUP}")
    try:
        assert pg_login_ok(user, pw0) and not pg_login_ok(user, "wrong")
        arn = sm.create_secret(Name=f"rot/{user}", SecretString=json.dumps(pg_secret(user, pw0)))["ARN"]
        for n in (1, 2):
            before = json_value(sm, arn)["password"]
            rotate(server, sm, arn, "postgres-single-user", n)
            cur = json_value(sm, arn)
            assert cur["username"] == user and cur["password"] != before
            assert pg_login_ok(user, cur["password"]), "the new password logs in"
            assert not pg_login_ok(user, before), "the old password no longer does"
            assert json_value(sm, arn, "AWSPREVIOUS")["password"] == before
        assert "RotationFailed" not in server.names(arn)
    finally:
        pg.execute(f"DROP ROLE IF EXISTS {user}")


def test_mysql_single_user(server, sm, my):
    user, pw0 = random_name("arca_e2e_my"), random_password()
    my_sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw0}'",
           f"GRANT SELECT ON {MY_DB}.* TO '{user}'@'%'")
    try:
        assert my_login_ok(user, pw0) and not my_login_ok(user, "wrong")
        arn = sm.create_secret(Name=f"rot/{user}", SecretString=json.dumps(my_secret(user, pw0)))["ARN"]
        for n in (1, 2):
            before = json_value(sm, arn)["password"]
            rotate(server, sm, arn, "mysql-single-user", n)
            cur = json_value(sm, arn)
            assert cur["username"] == user and cur["password"] != before
            assert my_login_ok(user, cur["password"]), "the new password logs in"
            assert not my_login_ok(user, before), "the old password no longer does"
        assert "RotationFailed" not in server.names(arn)
    finally:
        my_sql(f"DROP USER IF EXISTS '{user}'@'%'")


# ---------- alternating users ----------

def pg_privileges(c, role: str, table: str) -> dict:
    return {p: c.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, p)).fetchone()[0]
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}


def test_postgres_alternating_users(server, sm, pg):
    user, master = random_name("arca_e2e_alt"), random_name("arca_e2e_master")
    clone, group, table = f"{user}_clone", random_name("arca_e2e_grp"), random_name("arca_e2e_tbl")
    pw0, mpw = random_password(), random_password()
    pg.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{pw0}' IN ROLE {PG_GROUP}")
    pg.execute(f"CREATE ROLE {master} LOGIN CREATEROLE PASSWORD '{mpw}' IN ROLE {PG_GROUP}")
    pg.execute(f"GRANT {user} TO {master} WITH ADMIN OPTION")
    pg.execute(f"CREATE ROLE {group} NOLOGIN")
    pg.execute(f"GRANT {group} TO {user}")
    pg.execute(f"CREATE TABLE {table} (x int)")
    pg.execute(f"GRANT SELECT, INSERT ON {table} TO {user}")
    pg.execute(f"GRANT UPDATE ON {table} TO {group}")
    try:
        master_arn = sm.create_secret(Name=f"rot/{master}",
                                      SecretString=json.dumps(pg_secret(master, mpw)))["ARN"]
        arn = sm.create_secret(Name=f"rot/{user}", SecretString=json.dumps(
            pg_secret(user, pw0, masterarn=master_arn)))["ARN"]
        with LoginLoop(server.endpoint, arn, pg_login_ok) as loop:
            rotate(server, sm, arn, "postgres-alternating-users", 1)
            cur = json_value(sm, arn)
            assert cur["username"] == clone
            assert cur["masterarn"] == master_arn
            assert pg_login_ok(clone, cur["password"])
            assert pg_login_ok(user, pw0), "the previous user still logs in"
            assert pg_privileges(pg, clone, table) == pg_privileges(pg, user, table)
            assert pg.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (clone, group)).fetchone()[0]

            rotate(server, sm, arn, "postgres-alternating-users", 2)
            cur2 = json_value(sm, arn)
            assert cur2["username"] == user, "the second rotation toggles back"
            assert pg_login_ok(user, cur2["password"]) and not pg_login_ok(user, pw0)
            assert pg_login_ok(clone, cur["password"]), "AWSPREVIOUS still logs in"
        assert loop.ok > 0 and set(loop.users) == {user, clone}, loop.users
        assert loop.failed == [], f"logins with AWSCURRENT failed: {loop.failed}"
        assert "RotationFailed" not in server.names(arn)
        # The master's own secret was not touched.
        assert json_value(sm, master_arn)["password"] == mpw
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")
        for r in (clone, user, group, master):
            pg.execute(f"DROP ROLE IF EXISTS {r}")


def test_mysql_alternating_users(server, sm, my):
    user, master = random_name("arca_e2e_alt"), random_name("arca_e2e_m")
    clone, table = f"{user}_clone", random_name("t")
    pw0, mpw = random_password(), random_password()
    my_sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw0}'",
           f"CREATE USER '{master}'@'%' IDENTIFIED BY '{mpw}'",
           f"CREATE TABLE {MY_DB}.{table} (x int)",
           f"GRANT SELECT ON {MY_DB}.* TO '{user}'@'%'",
           f"GRANT SELECT, INSERT ON {MY_DB}.{table} TO '{user}'@'%'",
           f"GRANT UPDATE ON {MY_DB}.* TO '{user}'@'%' WITH GRANT OPTION",
           f"GRANT ALL PRIVILEGES ON *.* TO '{master}'@'%' WITH GRANT OPTION")
    try:
        master_arn = sm.create_secret(Name=f"rot/{master}",
                                      SecretString=json.dumps(my_secret(master, mpw)))["ARN"]
        arn = sm.create_secret(Name=f"rot/{user}", SecretString=json.dumps(
            my_secret(user, pw0, masterarn=master_arn)))["ARN"]
        with LoginLoop(server.endpoint, arn, my_login_ok) as loop:
            rotate(server, sm, arn, "mysql-alternating-users", 1)
            cur = json_value(sm, arn)
            assert cur["username"] == clone
            assert my_login_ok(clone, cur["password"])
            assert my_login_ok(user, pw0), "the previous user still logs in"
            assert my_grants(clone) == my_grants(user)

            rotate(server, sm, arn, "mysql-alternating-users", 2)
            cur2 = json_value(sm, arn)
            assert cur2["username"] == user, "the second rotation toggles back"
            assert my_login_ok(user, cur2["password"]) and not my_login_ok(user, pw0)
            assert my_login_ok(clone, cur["password"]), "AWSPREVIOUS still logs in"
            assert my_grants(clone) == my_grants(user)
        assert loop.ok > 0 and set(loop.users) == {user, clone}, loop.users
        assert loop.failed == [], f"logins with AWSCURRENT failed: {loop.failed}"
        assert "RotationFailed" not in server.names(arn)
    finally:
        my_sql(f"DROP TABLE IF EXISTS {MY_DB}.{table}")
        for u in (clone, user, master):
            my_sql(f"DROP USER IF EXISTS '{u}'@'%'")


# ---------- the database is down ----------

def test_database_down_fails_at_set_secret_then_retry_completes(server, sm, pg):
    user, pw0 = random_name("arca_e2e_down"), random_password()
    pg.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{pw0}' IN ROLE {PG_GROUP}")
    proxy = Proxy(PG_PORT)  # the secret names the proxy's port; nothing listens there yet
    try:
        arn = sm.create_secret(Name=f"rot/{user}",
                               SecretString=json.dumps(pg_secret(user, pw0, port=proxy.port)))["ARN"]
        old = stage_holder(sm, arn, "AWSCURRENT")
        tok = token()
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=FN["postgres-single-user"],
                         ClientRequestToken=tok)
        failed = server.wait_event(arn, "RotationFailed", timeout=20)
        assert failed["step"] == "setSecret" and failed["versionId"] == tok, failed
        assert pw0 not in json.dumps(failed)
        assert stage_holder(sm, arn, "AWSCURRENT") == old
        assert json_value(sm, arn)["password"] == pw0
        assert pg_login_ok(user, pw0), "the database still has the old password"
        pending = json.loads(sm.get_secret_value(SecretId=arn, VersionId=tok,
                                                 VersionStage="AWSPENDING")["SecretString"])

        proxy.up()
        server.tolerate_failures(arn, 1)
        server.advance_clock(2 * 3600)
        ok = server.wait_event(arn, "RotationSucceeded", timeout=20)
        assert ok["versionId"] == tok
        assert stage_holder(sm, arn, "AWSCURRENT") == tok
        cur = json_value(sm, arn)
        assert cur["password"] == pending["password"], "the retry keeps the pending version"
        assert pg_login_ok(user, cur["password"]) and not pg_login_ok(user, pw0)
        assert server.names(arn) == ["RotationStarted", "RotationFailed", "RotationSucceeded"]
    finally:
        proxy.down()
        pg.execute(f"DROP ROLE IF EXISTS {user}")


def test_confused_deputy_pending_version_naming_another_user_is_refused(server, sm, pg):
    """A version someone staged AWSPENDING by hand names another user: the scheduled
    rotation that takes it up must refuse at setSecret and change no password."""
    user, victim = random_name("arca_e2e_cd"), random_name("arca_e2e_victim")
    pw0, vpw = random_password(), random_password()
    pg.execute(f"CREATE ROLE {user} LOGIN CREATEROLE PASSWORD '{pw0}' IN ROLE {PG_GROUP}")
    pg.execute(f"CREATE ROLE {victim} LOGIN PASSWORD '{vpw}' IN ROLE {PG_GROUP}")
    try:
        arn = sm.create_secret(Name=f"rot/{user}", SecretString=json.dumps(pg_secret(user, pw0)))["ARN"]
        rotate(server, sm, arn, "postgres-single-user", 1,
               RotationRules={"AutomaticallyAfterDays": 1})
        current = json_value(sm, arn)
        evil = token()
        sm.put_secret_value(SecretId=arn, ClientRequestToken=evil, VersionStages=["AWSPENDING"],
                            SecretString=json.dumps(pg_secret(victim, "attacker-chosen-pw")))
        server.advance_clock(2 * 86400)  # the next scheduled rotation takes up AWSPENDING
        failed = server.wait_event(arn, "RotationFailed", timeout=20)
        assert failed["step"] == "setSecret", failed
        assert "attacker-chosen-pw" not in json.dumps(failed)
        assert pg_login_ok(victim, vpw), "the victim's password did not change"
        assert not pg_login_ok(victim, "attacker-chosen-pw")
        assert json_value(sm, arn) == current
        assert pg_login_ok(user, current["password"])
    finally:
        pg.execute(f"DROP ROLE IF EXISTS {victim}")
        pg.execute(f"DROP ROLE IF EXISTS {user}")
