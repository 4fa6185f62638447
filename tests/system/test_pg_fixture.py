"""The PostgreSQL fixture the fleet tests use (pgutil.py): SCRAM login of role guard through
the passfile, values through psql variables stay data, stop/start keeps the data, close()
removes the directory."""
import os
import subprocess

import pytest

import pgutil


def psql_as_guard(pg, conninfo, sql):
    return subprocess.run([str(pgutil.PGBIN / "psql"), "-X", "-A", "-t", "-c", sql, conninfo],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PGPASSWORD": ""})


@pytest.fixture
def pg():
    p = pgutil.Postgres()
    yield p
    p.close()


def test_pg_fixture(pg):
    r = psql_as_guard(pg, pg.conninfo, "SELECT current_user, current_database()")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "guard|rampart"
    bad = pg.conninfo.replace(f"passfile={pg.passfile}", "password=wrong")
    r = psql_as_guard(pg, bad, "SELECT 1")
    assert r.returncode != 0 and "password authentication failed" in r.stderr

    evil = "x'); DROP TABLE t; --"
    pg.query("CREATE TABLE t (v text); INSERT INTO t VALUES (:'v');", v=evil)
    assert pg.query("SELECT v FROM t") == [(evil,)]
    pg.stop()
    r = psql_as_guard(pg, pg.conninfo, "SELECT 1")
    assert r.returncode != 0
    pg.start()
    assert pg.query("SELECT count(*) FROM t WHERE v = :'v'", v=evil) == [("1",)]
    d = pg.dir
    pg.close()
    assert not os.path.exists(d)
