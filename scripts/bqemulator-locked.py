"""bqemulator with DuckDB locked down; the same command line as `bqemulator`.

    python bqemulator-locked.py start --project P --rest-port 0 --grpc-port 0 ...

scripts/bq-emulator.sh installs this file into its venv and prints a
`bqemulator` that runs it. bqemulator 1.4.0 offers no switch for DuckDB's
settings (its CLI flags, BQEMU_* variables and .bqemu.toml cover only its own
settings), so this launcher patches how it opens DuckDB, then runs
bqemulator's own entry point:

- every DuckDB connection the process opens gets
  autoinstall_known_extensions, autoload_known_extensions and
  allow_community_extensions off, so no query can download or load an
  extension;
- bqemulator's start-up loads the spatial extension without INSTALL (the
  install script installs it from PyPI's wheel, so nothing is downloaded;
  without it start-up fails) and skips the Avro extension, which it would
  download from extensions.duckdb.org;
- once the engine has started, before the server listens, its connection
  gets enable_external_access=false (no file, network, ATTACH or COPY
  access: read_text, read_blob, read_csv, glob, ST_Read … fail with a
  Permission Error) and then lock_configuration=true, so that SQL cannot
  SET them back. The helper connection that turns GEOGRAPHY values into WKT
  is locked the same way.

If bqemulator's internals moved, this fails at start-up rather than running
an emulator that is not locked.
"""

import os
import sys

# bqemulator's Avro support downloads DuckDB's avro extension at start-up.
os.environ["BQEMU_ENABLE_FORMAT_EXTENSIONS"] = "false"

import duckdb  # noqa: E402

from bqemulator.cli import main  # noqa: E402
from bqemulator.domain.errors import InternalError  # noqa: E402
from bqemulator.storage import engine as engine_module  # noqa: E402
from bqemulator.types import geography  # noqa: E402

# Given to every connection when it opens.
CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}

# Set once the extensions are loaded, in this order: lock_configuration last.
LOCK_SETTINGS = (
    ("enable_external_access", "false"),
    ("lock_configuration", "true"),
)


def _require(owner, name):
    if not hasattr(owner, name):
        sys.exit(
            f"bqemulator-locked: {getattr(owner, '__name__', owner)}.{name} is missing; "
            "this launcher knows bqemulator 1.4.0 and will not start an emulator it cannot lock"
        )


for owner, name in (
    (engine_module, "DuckDBEngine"),
    (engine_module.DuckDBEngine, "start"),
    (engine_module.DuckDBEngine, "_load_spatial"),
    (engine_module.DuckDBEngine, "_load_format_extensions"),
    (geography, "_ensure_conv_conn"),
    (geography, "_CONV_LOCK"),
    (geography, "_CONV_CONN"),
):
    _require(owner, name)

_connect = duckdb.connect


def connect(database=":memory:", read_only=False, config=None, **kwargs):
    """duckdb.connect, with extension downloads and auto-loading off."""
    return _connect(database, read_only=read_only, config={**(config or {}), **CONNECT_CONFIG}, **kwargs)


duckdb.connect = connect


def lock(connection):
    """Loads spatial, then turns off external access and locks the settings."""
    connection.execute("LOAD spatial")
    locked = connection.execute("SELECT current_setting('lock_configuration')").fetchone()[0]
    if not locked:
        for name, value in LOCK_SETTINGS:
            connection.execute(f"SET {name} = {value}")
    settings = dict(
        connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', "
            "'autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall()
    )
    expected = {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }
    if settings != expected:
        raise InternalError(f"bqemulator-locked: DuckDB is not locked: {settings}")


def _load_spatial(self):
    """LOAD only: never INSTALL, which could download the extension."""
    try:
        self.connection.execute("LOAD spatial")
    except Exception as exc:
        raise InternalError(
            "DuckDB's spatial extension is not installed; run scripts/bq-emulator.sh, "
            f"which installs it from PyPI. Underlying error: {exc}"
        ) from exc


def _load_format_extensions(self):
    """No Avro: its extension would be downloaded."""


_start = engine_module.DuckDBEngine.start


async def start(self):
    await _start(self)
    lock(self.connection)


def _ensure_conv_conn():
    with geography._CONV_LOCK:
        if geography._CONV_CONN is None:
            connection = duckdb.connect(":memory:")
            lock(connection)
            geography._CONV_CONN = connection
        return geography._CONV_CONN


engine_module.DuckDBEngine._load_spatial = _load_spatial
engine_module.DuckDBEngine._load_format_extensions = _load_format_extensions
engine_module.DuckDBEngine.start = start
geography._ensure_conv_conn = _ensure_conv_conn

if __name__ == "__main__":
    sys.argv[0] = "bqemulator"
    sys.exit(main())
