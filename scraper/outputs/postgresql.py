"""Items as rows of a PostgreSQL table (``-o postgresql://USER@HOST:PORT/DB?table=NAME``,
psycopg 3): each item whole in a JSONB column ``item``, plus typed columns from
``fields:``, and a column of our own, ``_scraper_id``, that numbers the rows.

Rows are buffered and sent in batches with COPY, one transaction each; with ``key:``
a batch is COPYed into a temporary table and upserted from it (``ON CONFLICT (key)
DO UPDATE``), so an item whose key is already there replaces that row and keeps its
id. The output's position is the last committed id: a resumed job deletes the rows
above it (the items of pages whose leases were not committed, which are fetched
again), exactly as the SQLite output does. Which job writes each table is kept in
``_scraper_jobs`` beside it.

Every value is converted to its column's type here, in ``encode``: an item the
server would refuse (a NUL character, a number out of range, a date that is not
one) is a BadItem before anything is written, never a failed batch. The password of
the URL is never shown: ``path`` (in logs, errors and the job's positions) is the
URL without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ..exceptions import BadItem, ConfigError, StorageError
from ..items import json_default
from .base import JobMark

if TYPE_CHECKING:
    import psycopg

__all__ = ["EXTRA", "ID_COLUMN", "ITEM_COLUMN", "JOBS_TABLE", "PostgresOutput", "PostgresTarget",
           "hide_password", "is_postgresql", "read_claim", "require_psycopg", "target"]

log = logging.getLogger(__name__)

#: What to install when psycopg is missing.
EXTRA = "pip install 'scraper[postgresql]'"
ID_COLUMN = "_scraper_id"
ITEM_COLUMN = "item"
JOBS_TABLE = "_scraper_jobs"
SCHEMES = ("postgresql://", "postgres://")
BATCH = 5000           # rows buffered before they are sent
FLUSH_SECONDS = 5.0    # ... or this long after the last batch, whichever comes first
CONNECT_TIMEOUT = 10   # seconds, unless the URL says (connect_timeout=)
_OURS = ("table", "key")  # query parameters of ours; the others are libpq's
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_NUL_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # a JSON \u0000 escape, not \\u0000


def is_postgresql(path: str) -> bool:
    return path.startswith(SCHEMES)


# -- where: the URL, the table, the columns -------------------------------------------
@dataclass(frozen=True)
class PostgresTarget:
    """A checked output spec: libpq's URL (password and all), the one to show, the table
    (``schema.name`` or ``name``, as PostgreSQL reads it unquoted), the typed columns
    (name → type) and the key column, if any."""

    conninfo: str
    shown: str
    schema: str | None
    table: str
    columns: tuple[tuple[str, str], ...]
    key: str | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


#: The types ``fields:`` may name, with their spellings, as PostgreSQL's format_type shows them.
TYPES = {"text": "text", "integer": "integer", "int": "integer", "bigint": "bigint",
         "numeric": "numeric", "decimal": "numeric", "double precision": "double precision",
         "float": "double precision", "boolean": "boolean", "bool": "boolean", "date": "date",
         "timestamp": "timestamp without time zone",
         "timestamptz": "timestamp with time zone", "jsonb": "jsonb"}


def hide_password(url: str) -> str:
    """``url`` without a password: neither its user part's nor a ``password=`` option."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(k == "password" for k, _ in query):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rsplit("@", 1)[1]
        user = quote(parts.username or "", safe="")
        netloc = f"{user}@{host}" if user else host
    kept = urlencode([(k, v) for k, v in query if k != "password"], safe="{}/")
    return _unsplit(parts.scheme, netloc, parts.path, kept)


def _unsplit(scheme: str, netloc: str, path: str, query: str) -> str:
    """A URL from its parts, keeping ``//`` when there is no host (``postgresql:///db``),
    which urlunsplit drops."""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    return parts.password or dict(parse_qsl(parts.query)).get("password")


def target(url: str, spider: str, spec: Mapping[str, Any]) -> PostgresTarget:
    """Check the URL and the spec's ``table``, ``fields`` and ``key`` (ConfigError naming
    the culprit, never the password); touches nothing."""
    shown = hide_password(url)
    parts = urlsplit(url)
    if not is_postgresql(url) or not parts.netloc and not parts.path.strip("/"):
        raise ConfigError(f"output {shown}: expected postgresql://USER@HOST:PORT/DB?table=NAME")
    try:
        parts.port  # noqa: B018  # a port that is not a number raises
    except ValueError:
        raise ConfigError(f"output {shown}: bad port (a number from 1 to 65535)") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    table_name = str(spec.get("table") or ours.get("table") or spider)
    schema, table = _table_name(table_name, shown)
    columns = _fields(spec.get("fields"), shown)
    key = spec.get("key") or ours.get("key")
    if key is not None:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"output {shown}: key must be the name of an item field")
        _column_name(key, shown)
        if key not in dict(columns):
            columns = (*columns, (key, "text"))
    libpq = [(k, v) for k, v in query if k not in _OURS]
    if not any(k == "connect_timeout" for k, _ in libpq):
        libpq.append(("connect_timeout", str(CONNECT_TIMEOUT)))
    conninfo = _unsplit("postgresql", parts.netloc, parts.path, urlencode(libpq))
    return PostgresTarget(conninfo, shown, schema, table, columns, key)


def _table_name(name: str, shown: str) -> tuple[str | None, str]:
    parts = name.split(".")
    if len(parts) > 2 or not all(_NAME_RE.match(p) for p in parts):
        raise ConfigError(f"output {shown}: bad table name {name!r} (letters, digits and _, "
                          "not starting with a digit, at most 63; schema.table allowed)")
    folded = [p.lower() for p in parts]  # as PostgreSQL reads a name unquoted
    if folded[-1] == JOBS_TABLE:
        raise ConfigError(f"output {shown}: the table name {name!r} is the output's own; "
                          "give another (table=NAME)")
    return (folded[0], folded[1]) if len(folded) == 2 else (None, folded[0])


def _column_name(name: Any, shown: str) -> str:
    if not isinstance(name, str) or not name or "\x00" in name or len(name.encode()) > 63:
        raise ConfigError(f"output {shown}: field {name!r} cannot be a column name (1 to 63 "
                          "bytes, no NUL)")
    if name in (ID_COLUMN, ITEM_COLUMN):
        raise ConfigError(f"output {shown}: field {name!r} names a column of the output's own "
                          f"({ID_COLUMN}: the row number, {ITEM_COLUMN}: the whole item)")
    return name


def _fields(fields: Any, shown: str) -> tuple[tuple[str, str], ...]:
    """``fields:`` as (column, type) pairs: a mapping of names to types, or a list of names
    (text columns)."""
    if fields is None:
        return ()
    if isinstance(fields, list):
        fields = {f: "text" for f in fields}
    if not isinstance(fields, dict):
        raise ConfigError(f"output {shown}: fields must be a mapping of item fields to column "
                          "types, e.g. {title: text, price: numeric}, or a list of fields")
    out = []
    for name, kind in fields.items():
        _column_name(name, shown)
        canonical = TYPES.get(" ".join(str(kind).lower().split()))
        if canonical is None:
            raise ConfigError(f"output {shown}: field {name!r}: unknown column type {kind!r} "
                              f"(one of {', '.join(sorted(TYPES))})")
        out.append((name, canonical))
    return tuple(out)


def require_psycopg() -> Any:
    """The psycopg module; ConfigError naming the extra to install when it is missing."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError(f"the postgresql:// output needs psycopg: {EXTRA}") from None
    return psycopg


def connect(t: PostgresTarget) -> psycopg.Connection[Any]:
    """A connection to ``t``'s database; ConfigError (naming the URL without its password)
    when there is none."""
    pg = require_psycopg()
    try:
        conn: psycopg.Connection[Any] = pg.connect(t.conninfo)
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
    except pg.Error as e:
        raise ConfigError(f"output {t.shown}: cannot connect ({_one_line(e, t)})") from None
    return conn


def _one_line(e: Exception, t: PostgresTarget) -> str:
    """The error's message on one line, without the password should libpq have quoted it."""
    text = " ".join(str(e).split()) or type(e).__name__
    password = _password(t.conninfo)
    return text.replace(password, "***") if password else text


# -- values ---------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, list | dict | tuple | set | frozenset):
        return _json(value)
    out = json_default(value)
    return out if isinstance(out, str) else _json(out)


# one encoder for every item (json.dumps with options makes a new one each call)
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=json_default, allow_nan=False,
                            separators=(",", ":"))


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


def _integer(bits: int) -> Callable[[Any], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("a boolean is not an integer")
        if isinstance(value, float | decimal.Decimal):
            if value != value or value in (float("inf"), float("-inf")) or value != int(value):
                raise ValueError(f"{value!r} is not a whole number")
            value = int(value)
        elif isinstance(value, str):
            value = int(value.strip())
        if not isinstance(value, int):
            raise ValueError(f"a {type(value).__name__} is not an integer")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for a {bits}-bit integer")
        return value
    return convert


def _numeric(value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    number = decimal.Decimal(value.strip() if isinstance(value, str) else
                             repr(value) if isinstance(value, float) else value)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if number.adjusted() >= 131072 or number.as_tuple().exponent < -16383:  # type: ignore[operator]
        raise ValueError(f"{value!r} is beyond PostgreSQL's numeric range")
    return number


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return float(value.strip() if isinstance(value, str) else value)  # OverflowError: too big


_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{value!r} is not true or false")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise ValueError(f"a {type(value).__name__} is not a date")


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.strip())
    raise ValueError(f"a {type(value).__name__} is not a timestamp")


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "text": _text, "integer": _integer(32), "bigint": _integer(64), "numeric": _numeric,
    "double precision": _double, "boolean": _boolean, "date": _date,
    "timestamp without time zone": _timestamp, "timestamp with time zone": _timestamp,
    "jsonb": _json,
}


# -- the output -------------------------------------------------------------------------
class PostgresOutput:
    """Items as rows of a PostgreSQL table, sent in batches (see the module docstring)."""

    def __init__(self, t: PostgresTarget, overwrite: bool, resume_at: int | None = None,
                 job: JobMark | None = None) -> None:
        self.target = t
        self.path = t.shown
        self._pg = require_psycopg()
        sql = self._pg.sql
        self._t = sql.Identifier(*t.qualified.split("."))
        self._columns = [name for name, _ in t.columns]
        self._converters = [(name, _CONVERT[kind]) for name, kind in t.columns]
        self._key = self._columns.index(t.key) + 1 if t.key else None  # index in a row
        self._rows: list[tuple[Any, ...]] = []
        self._flushed = time.monotonic()
        self._position = 0
        self.db = connect(t)
        try:
            self._open(overwrite, resume_at, job)
        except self._pg.Error as e:
            self.db.close()
            raise ConfigError(f"output {self.path}: cannot open table {t.qualified!r} "
                              f"({_one_line(e, t)})") from None
        except BaseException:
            self.db.close()
            raise

    # -- opening ---------------------------------------------------------------------
    def _open(self, overwrite: bool, resume_at: int | None, job: JobMark | None) -> None:
        sql, t = self._pg.sql, self.target
        db = self.db
        if overwrite:
            db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._t))
        existing = self._existing_columns()
        if existing is None:
            cols = [sql.SQL("{} bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY").format(
                        sql.Identifier(ID_COLUMN)),
                    sql.SQL("{} jsonb NOT NULL").format(sql.Identifier(ITEM_COLUMN))]
            cols += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(k)) for n, k in t.columns]
            db.execute(sql.SQL("CREATE TABLE {} ({})").format(self._t, sql.SQL(", ").join(cols)))
        else:
            self._check_columns(existing)
        if t.key is not None:
            self._unique_key()
        if resume_at is not None:
            db.execute(sql.SQL("DELETE FROM {} WHERE {} > %s").format(
                self._t, sql.Identifier(ID_COLUMN)), (resume_at,))
        self._claims()
        if job is not None:
            db.execute(sql.SQL('INSERT INTO {} ("table", job, job_dir) VALUES (%s, %s, %s) '
                               'ON CONFLICT ("table") DO UPDATE SET job = EXCLUDED.job, '
                               "job_dir = EXCLUDED.job_dir").format(self._claims_table()),
                       (t.table, job.id, job.location))
        elif overwrite:  # the table is new: no job's items are in it
            db.execute(sql.SQL('DELETE FROM {} WHERE "table" = %s').format(self._claims_table()),
                       (t.table,))
        self._position = self._max_id()
        db.commit()

    def _existing_columns(self) -> dict[str, str] | None:
        """The table's columns (name → type), or None when there is no such table."""
        rows = self.db.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            (self._regclass(),)).fetchall()
        return {name: kind for name, kind in rows} if rows else None

    def _regclass(self) -> str:
        """The table's name as to_regclass reads it (each part quoted)."""
        return ".".join('"' + p.replace('"', '""') + '"' for p in self.target.qualified.split("."))

    def _check_columns(self, existing: Mapping[str, str]) -> None:
        sql, t = self._pg.sql, self.target
        if ID_COLUMN not in existing or existing.get(ITEM_COLUMN) != "jsonb":
            raise ConfigError(f"output {self.path}: table {t.qualified!r} exists and was not made "
                              f"by this output (it has no {ID_COLUMN} and {ITEM_COLUMN} jsonb "
                              "columns); give another table (table=NAME)")
        for name, kind in t.columns:
            have = existing.get(name)
            if have is None:
                self.db.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    self._t, sql.Identifier(name), sql.SQL(kind)))
            elif have != kind:
                raise ConfigError(f"output {self.path}: column {name!r} of table "
                                  f"{t.qualified!r} is {have}, not {kind} as fields says; "
                                  "change fields, or use -O to start the table afresh")

    def _unique_key(self) -> None:
        sql, t = self._pg.sql, self.target
        assert t.key is not None
        digest = hashlib.sha1(f"{t.qualified}\x00{t.key}".encode()).hexdigest()[:10]
        name = f"{t.table[:40]}_{digest}_key"
        self.db.execute(sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(name), self._t, sql.Identifier(t.key)))

    def _claims_table(self) -> Any:
        sql, schema = self._pg.sql, self.target.schema
        return sql.Identifier(schema, JOBS_TABLE) if schema else sql.Identifier(JOBS_TABLE)

    def _claims(self) -> None:
        self.db.execute(self._pg.sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} ("table" text PRIMARY KEY, job text NOT NULL, '
            "job_dir text NOT NULL)").format(self._claims_table()))

    def _max_id(self) -> int:
        sql = self._pg.sql
        row = self.db.execute(sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(ID_COLUMN), self._t)).fetchone()
        return int(row[0] or 0) if row else 0

    # -- writing ---------------------------------------------------------------------
    def encode(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """The row: the item as JSON text, then each typed column's value; BadItem for a
        value PostgreSQL would refuse."""
        try:
            text = _json(item)
        except (TypeError, ValueError, RecursionError) as e:
            raise BadItem(f"output {self.path}: cannot be written as JSON ({e})") from None
        self._check_text(text, "the item")
        row: list[Any] = [text]
        for name, convert in self._converters:
            value = item.get(name)
            if value is not None:
                try:
                    value = convert(value)
                except (TypeError, ValueError, ArithmeticError, RecursionError) as e:
                    raise BadItem(f"output {self.path}: field {name!r} does not fit its column "
                                  f"({e})") from None
                if isinstance(value, str):
                    self._check_text(value, f"field {name!r}")
            row.append(value)
        if self._key is not None and row[self._key] is None:
            raise BadItem(f"output {self.path}: the item has no {self.target.key!r} (the key)")
        return tuple(row)

    def _check_text(self, text: str, what: str) -> None:
        if "\x00" in text or "\\u0000" in text and _NUL_RE.search(text):
            raise BadItem(f"output {self.path}: {what} holds a NUL character, which "
                          "PostgreSQL text cannot")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadItem(f"output {self.path}: {what} holds text that is not valid Unicode "
                          f"({e.reason}: {e.object[e.start:e.end]!r})") from None

    def put(self, encoded: tuple[Any, ...]) -> None:
        self._rows.append(encoded)
        if len(self._rows) >= BATCH or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def write(self, item: dict[str, Any]) -> None:
        self.put(self.encode(item))

    def flush(self) -> None:
        """Send the buffered rows and commit them (one transaction)."""
        self._flushed = time.monotonic()
        rows = self._rows
        if not rows:
            return
        try:
            if self._key is None:
                self._copy(self._t, rows)
            else:
                self._upsert(rows)
            self._position = self._max_id()
            self.db.commit()
        except self._pg.Error as e:
            with contextlib.suppress(self._pg.Error):
                self.db.rollback()  # the rows stay buffered: closing tries them once more
            raise StorageError(f"output {self.path}: {_one_line(e, self.target)}") from e
        self._rows = []

    def _copy(self, table: Any, rows: list[tuple[Any, ...]]) -> None:
        sql = self._pg.sql
        names = sql.SQL(", ").join(sql.Identifier(n) for n in [ITEM_COLUMN, *self._columns])
        with self.db.cursor() as cur, cur.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(table, names),
                writer=self._pg.copy.QueuedLibpqWriter(cur)) as copy:
            # the queued writer sends from a thread: the server parses one chunk while
            # this thread formats the next
            for row in rows:
                copy.write_row(row)

    def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        """COPY into a temporary table, then insert or update from it. Within one batch
        the last item of a key wins (one statement cannot update a row twice)."""
        sql = self._pg.sql
        key = self._key
        assert key is not None
        last = {row[key]: row for row in rows}
        staging = sql.Identifier("_scraper_batch")
        names = sql.SQL(", ").join(sql.Identifier(n) for n in [ITEM_COLUMN, *self._columns])
        self.db.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS "
                                "AS SELECT {} FROM {} WITH NO DATA").format(staging, names, self._t))
        self._copy(staging, list(last.values()))
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                                     for n in [ITEM_COLUMN, *self._columns] if n != self.target.key)
        self.db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} "
                                "ON CONFLICT ({}) DO UPDATE SET {}").format(
            self._t, names, names, staging, sql.Identifier(self.target.key), updates))

    def position(self) -> int:
        """The id of the last committed row."""
        self.flush()
        return self._position

    def close(self) -> None:
        if self.db.closed:
            return
        try:
            self.flush()
        finally:
            self.db.close()


def read_claim(t: PostgresTarget) -> dict[str, Any] | None:
    """The job that wrote ``t``'s table (only read); None when no job is recorded or the
    table holds no rows. ConfigError when the server cannot be reached."""
    pg = require_psycopg()
    sql = pg.sql
    table = sql.Identifier(*t.qualified.split("."))
    claims = sql.Identifier(t.schema, JOBS_TABLE) if t.schema else sql.Identifier(JOBS_TABLE)
    with connect(t) as db:
        try:
            if db.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(table)).fetchone() is None:
                return None
            row = db.execute(sql.SQL('SELECT job, job_dir FROM {} WHERE "table" = %s').format(
                claims), (t.table,)).fetchone()
        except pg.errors.UndefinedTable:
            return None  # nothing written yet
        except pg.Error as e:
            raise ConfigError(f"output {t.shown}: cannot read table {t.qualified!r} "
                              f"({_one_line(e, t)})") from None
    return {"job": row[0], "job_dir": row[1]} if row else None
