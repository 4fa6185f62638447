"""A real PostgreSQL 15 for the fleet tests, started by the test in its own temp directory
through tests/pg-test-server.sh (the same steps the C unit test uses):

    initdb as the postgres OS user (initdb refuses root), SCRAM passwords over TCP, trust on
    the server's own Unix socket for the postgres superuser; role `guard` with a random
    password written to a passfile (`*:PORT:rampart:guard:PW`), database `rampart` owned by it;
    pg_ctl start with listen_addresses=ADDR -p PORT -k DIR/run -c fsync=off.

ADDR is 127.0.0.1 unless the test gives another of its own addresses (a veth address in the
host namespace, for daemons in namespaces the test created). stop()/start() stop and restart
the same cluster (the fleet tests stop PostgreSQL for 30 s); close() removes everything, and a
finaliser calls it if the test does not. A missing PostgreSQL raises: never a skip.

    pg = Postgres()
    pg.conninfo                      # host=127.0.0.1 port=... dbname=rampart user=guard passfile=...
    pg.conninfo_for(user="rampart")  # with a passfile copy that user owns (libpq wants 0600)
    pg.query("SELECT reason FROM rampart_guard_history WHERE machine = :'m'", m="web1")
    pg.stop(); pg.start(); pg.close()
"""
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "pg-test-server.sh"
PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def free_port(addr="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _script(*args, timeout=120):
    r = subprocess.run(["sh", str(SCRIPT)] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"pg-test-server.sh {' '.join(map(str, args))} exited "
                             f"{r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _destroy(directory):
    if os.path.isdir(directory):
        subprocess.run(["sh", str(SCRIPT), "destroy", directory], capture_output=True,
                       timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


class Postgres:
    def __init__(self, listen="127.0.0.1", port=None):
        if not (PGBIN / "initdb").exists():
            raise AssertionError(f"{PGBIN}/initdb missing: install postgresql-15 (make deps)")
        self.dir = tempfile.mkdtemp(prefix="rampart-pg-")
        self._finalizer = weakref.finalize(self, _destroy, self.dir)
        self.listen = listen
        self.port = port or free_port(listen)
        out = _script("start", self.dir, self.port, listen)
        self.conninfo = out.strip().splitlines()[-1]
        self.passfile = pathlib.Path(self.dir) / "passfile"
        self.password = self.passfile.read_text().strip().rsplit(":", 1)[1]
        self.running = True

    @property
    def socket_dir(self):
        return pathlib.Path(self.dir) / "run"

    @property
    def log(self):
        """The server's log, for diagnostics."""
        try:
            return (self.socket_dir / "log").read_text(errors="replace")
        except OSError:
            return ""

    def conninfo_for(self, user=None, host=None, **extra):
        """A conninfo for a daemon: host (default the listen address), a passfile that user
        owns with mode 0600 (libpq ignores a group- or world-readable one), extra keywords."""
        passfile = self.passfile
        if user is not None:
            passfile = pathlib.Path(self.dir) / f"passfile-{user}"
            shutil.copyfile(self.passfile, passfile)
            pw = pwd.getpwnam(user)
            os.chown(passfile, pw.pw_uid, pw.pw_gid)
            os.chmod(passfile, 0o600)
        host = host or self.listen
        kv = {"host": host, "port": self.port, "dbname": "rampart", "user": "guard",
              "passfile": passfile, **extra}
        return " ".join(f"{k}={v}" for k, v in kv.items())

    def stop(self):
        _script("stop", self.dir)
        self.running = False

    def start(self):
        _script("start", self.dir)
        self.running = True

    def query(self, sql, timeout=60, **variables):
        """Runs sql as the superuser over the Unix socket on database rampart; rows as tuples
        of strings. Values go in as psql variables (:'name' quotes them), never in the text."""
        cmd = [str(PGBIN / "psql"), "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
               "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
               "-d", "rampart"]
        for k, v in variables.items():
            cmd += ["-v", f"{k}={v}"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"psql: {r.stderr.strip()}")
        return [tuple(line.split("\x1f")) for line in r.stdout.splitlines() if line]

    def close(self):
        self.running = False
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
