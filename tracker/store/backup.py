"""Database copies for `tracker backup` / `tracker restore` (the archive around them is tracker/backup.py).

A copy is taken while writers go on, and it is *consistent*: one snapshot of the whole database, so the
copied checkpoint covers exactly the copied entries.

- SQLite: the online backup API, copying page by page from inside one read transaction (in WAL mode a
  reader sees one snapshot and never blocks the writer, so the copy never has to restart).
- PostgreSQL: ``pg_dump`` (custom format) of the ledger's schema, run with ``--snapshot`` from a
  REPEATABLE READ transaction held open here; what the archive records about the copy (size, checkpoint)
  is read in that same transaction.

Restores go into an empty database only; ``ledger_rows`` tells how full one is.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from sqlalchemy.engine import make_url

from ..errors import TrackerError
from . import sqlite_file

__all__ = ["Snapshot", "Progress", "copy_sqlite", "restore_sqlite", "dump_postgres", "restore_postgres",
           "ledger_rows", "pg_tool", "safe_url", "ToolMissing"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
_PAGES_PER_STEP = 1024  # 4 MiB at SQLite's default page size: progress every few tenths of a second
_TABLES = ("entries", "merkle_nodes", "key_events", "parties", "party_keys", "checkpoints", "meta", "users",
           "device_requests", "alembic_version")


class ToolMissing(TrackerError):
    code = "tool_missing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What the copy holds, read from the copy's own snapshot."""

    meta: Mapping[str, str]
    tree_size: int
    checkpoint: str | None
    schema: str | None = None  # PostgreSQL: the schema that was dumped


def _quiet(stage: str, done: int, total: int) -> None:
    pass


# --- SQLite -----------------------------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path:
    path = sqlite_file(url)
    if path is None:
        raise TrackerError(f"{url} is not an SQLite database file", code="invalid_database_url")
    return path


def _read_snapshot(conn: Any) -> Snapshot:
    """meta, size and newest checkpoint through a DB-API connection (sqlite3 or psycopg): no parameters, so
    the same SQL serves both."""
    cur = conn.cursor()
    cur.execute("SELECT name, value FROM meta")
    meta = {name: value for name, value in cur.fetchall()}
    cur.execute("SELECT max(leaf_index) FROM entries")
    top = cur.fetchone()[0]
    cur.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
    row = cur.fetchone()
    cur.close()
    return Snapshot(meta=meta, tree_size=0 if top is None else top + 1, checkpoint=row[0] if row else None)


def copy_sqlite(url: str, dest: Path, *, progress: Progress = _quiet) -> Snapshot:
    """Copy the live SQLite ledger at ``url`` to the file ``dest`` (which must not exist)."""
    src = sqlite3.connect(str(_sqlite_path(url)), isolation_level=None, timeout=60)
    try:
        src.execute("BEGIN")  # one snapshot for the whole copy, however many steps it takes
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst, pages=_PAGES_PER_STEP,
                       progress=lambda _status, remaining, total: progress("copying database pages",
                                                                          total - remaining, total))
            snap = _read_snapshot(dst)
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.Error as exc:
        raise TrackerError(f"cannot copy the SQLite ledger: {exc}", code="backup_failed") from exc
    finally:
        src.close()
    if problem != "ok":
        raise TrackerError(f"the copy fails SQLite's check: {problem}", code="backup_failed")
    return snap


def restore_sqlite(copy: Path, url: str, *, progress: Progress = _quiet) -> Snapshot:
    """Write the SQLite database file ``copy`` into the (empty) ledger database at ``url``."""
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(copy))
    try:
        problem = src.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise TrackerError(f"the database in the backup fails SQLite's check: {problem}", code="backup_corrupt")
        dst = sqlite3.connect(str(target), timeout=60)
        try:
            src.backup(dst, pages=_PAGES_PER_STEP,
                       progress=lambda _status, remaining, total: progress("restoring database pages",
                                                                          total - remaining, total))
            dst.execute("PRAGMA journal_mode=WAL")
            return _read_snapshot(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise TrackerError(f"cannot restore into {target}: {exc}", code="restore_failed") from exc
    finally:
        src.close()


# --- PostgreSQL --------------------------------------------------------------------------------------------

def pg_tool(name: str) -> str:
    """The newest ``pg_dump`` / ``pg_restore`` on this machine (a dump needs one at least as new as the server)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)] or [0])
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise ToolMissing(f"{name} is not installed (Debian: apt-get install postgresql-client)")


def _libpq_env(url: str) -> dict[str, str]:
    """The connection as libpq environment variables: no password on a command line where ps would show it."""
    u = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for var, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value is not None:
            env[var] = str(value)
    options = u.query.get("options")
    if options:
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("host", "PGHOST")):
        extra = u.query.get(key)
        if isinstance(extra, str):
            env[var] = extra
    return env


def _pg_connect(url: str) -> Any:
    import psycopg

    u = make_url(url)
    return psycopg.connect(u.set(drivername="postgresql").render_as_string(hide_password=False))


def _run_pg(cmd: list[str], url: str, stage: str, marker: str, total: int, progress: Progress) -> None:
    """Run pg_dump / pg_restore --verbose, turning its per-table lines into progress, and fail with its last
    error line (one line, no password: the connection is in the environment)."""
    proc = subprocess.Popen(cmd, env=_libpq_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    errors: list[str] = []
    done = 0
    for line in proc.stderr:
        if marker in line:
            done += 1
            progress(stage, min(done, total), total)
        elif "error" in line.lower() or "fatal" in line.lower():
            errors.append(line.strip())
    if proc.wait() != 0:
        tool = Path(cmd[0]).name
        raise TrackerError(f"{tool} failed: {errors[-1] if errors else f'exit status {proc.returncode}'}",
                           code="backup_failed" if tool == "pg_dump" else "restore_failed")


def dump_postgres(url: str, dest: Path, *, progress: Progress = _quiet) -> Snapshot:
    """pg_dump (custom format) of the ledger's schema at ``url`` into ``dest``, from one snapshot."""
    pg_dump = pg_tool("pg_dump")
    import psycopg

    try:
        conn = _pg_connect(url)
    except psycopg.Error as exc:
        raise TrackerError(f"cannot reach the database: {exc}".strip(), code="storage_unavailable") from exc
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        snap = _read_snapshot(conn)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0]
        _run_pg([pg_dump, "--format=custom", "--verbose", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}",
                 f"--schema={schema}", f"--file={dest}"], url, "dumping tables", "dumping contents of table",
                tables, progress)
        conn.execute("COMMIT")
    except psycopg.Error as exc:
        raise TrackerError(f"cannot dump the PostgreSQL ledger: {exc}", code="backup_failed") from exc
    finally:
        conn.close()
    return Snapshot(meta=snap.meta, tree_size=snap.tree_size, checkpoint=snap.checkpoint, schema=schema)


def restore_postgres(dump: Path, url: str, *, schema: str, progress: Progress = _quiet) -> None:
    """pg_restore ``dump`` into the (empty) database at ``url``, whose search path must name ``schema``: a dump
    holds schema-qualified tables, so they land in the schema they came from."""
    pg_restore = pg_tool("pg_restore")
    conn = _pg_connect(url)
    try:
        current = conn.execute("SELECT current_schema()").fetchone()[0]
        if current is None:  # the search path names a schema that does not exist yet: its first entry
            path = conn.execute("SHOW search_path").fetchone()[0]
            current = path.split(",")[0].strip().strip('"')
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None
    finally:
        conn.close()
    if current != schema:
        raise TrackerError(f"the backup holds PostgreSQL schema {schema!r} but the target's search path puts new "
                           f"tables in {current!r}: use a database whose search path is {schema!r} (for a schema "
                           f"other than public: ?options=-csearch_path%3D{schema} in WAYBILL_DATABASE_URL)",
                           code="schema_mismatch")
    listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, timeout=600)
    if listing.returncode != 0:
        raise TrackerError(f"pg_restore cannot read the dump: {listing.stderr.strip()[-300:]}", code="backup_corrupt")
    # The schema itself may already exist (public always does): restore what is in it, not the schema.
    keep = [line for line in listing.stdout.splitlines()
            if line and not line.startswith(";") and not re.search(r"\bSCHEMA - ", line)]
    tables = sum(1 for line in keep if " TABLE DATA " in line)
    list_file = dump.with_name(dump.name + ".list")
    list_file.write_text("\n".join(keep) + "\n")
    if not exists:
        conn = _pg_connect(url)
        try:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.commit()
        finally:
            conn.close()
    _run_pg([pg_restore, "--verbose", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
             f"--use-list={list_file}", f"--dbname={make_url(url).database or 'postgres'}", str(dump)], url,
            "restoring tables", "processing data for table", tables, progress)


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database"


# --- how full a target is -----------------------------------------------------------------------------------

def ledger_rows(url: str) -> int:
    """Rows in the target's ledger tables (0: empty or no tables yet). Touches nothing."""
    path = sqlite_file(url)
    if path is not None:
        if not path.exists() or path.stat().st_size == 0:
            return 0
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES
                       if t in names and t != "alembic_version")
        finally:
            conn.close()
    conn = _pg_connect(url)
    try:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            return 0
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
        return sum(conn.execute(f'SELECT count(*) FROM "{schema}"."{t}"').fetchone()[0] for t in _TABLES
                   if t in names and t != "alembic_version")
    finally:
        conn.close()
