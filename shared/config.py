"""The one typed configuration of the pipeline, built by one small pure function.

`Settings.from_env` reads environment variables (overridable by CLI flags); the Glue seam builds the
same object from job arguments. A bad or missing setting fails at start-up with a message naming
the setting, never deep inside a Spark job with a Java stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit


class ConfigError(ValueError):
    """A setting is missing or malformed. The message names the setting."""


_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
# The modes that check the server's certificate against a CA file (`sslrootcert`); `require` only
# encrypts, and accepts any certificate, a man in the middle's included.
VERIFYING_SSLMODES = frozenset({"verify-ca", "verify-full"})
# The file name of AWS's RDS CA bundle, shipped with the Glue jobs (`--extra-files`, copied to each
# job's working directory) and committed at shared/certs/ (README there: origin, refresh).
RDS_CA_BUNDLE = "rds-global-bundle.pem"


@dataclass(frozen=True)
class PgUrl:
    """A PostgreSQL location parsed from `postgresql://user:password@host:port/db?sslmode=...[&sslrootcert=...]`."""

    setting: str  # which setting it came from, for error messages
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    sslrootcert: str | None = None  # CA file the server's certificate must chain to (verify-* modes)

    @property
    def _query(self) -> str:
        params = []
        if self.sslmode:
            params.append(f"sslmode={self.sslmode}")
        if self.sslrootcert:
            params.append(f"sslrootcert={_quote(self.sslrootcert, safe='/')}")
        return "?" + "&".join(params) if params else ""

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}{self._query}"

    @property
    def jdbc_properties(self) -> dict[str, str]:
        props = {"user": self.user, "driver": "org.postgresql.Driver"}
        if self.password is not None:
            props["password"] = self.password
        return props

    @property
    def conninfo(self) -> str:
        """A psycopg/libpq URL (password included: never log it; use `masked`)."""
        auth = self.user + (f":{_quote(self.password)}" if self.password is not None else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}{self._query}"

    @property
    def masked(self) -> str:
        auth = self.user + (":***" if self.password is not None else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"


def _quote(value: str, safe: str = "") -> str:
    from urllib.parse import quote

    return quote(value, safe=safe)


def parse_pg_url(setting: str, value: str) -> PgUrl:
    """Parse a postgresql:// URL, naming `setting` in any error (and never echoing a password)."""
    if not value or not value.strip():
        raise ConfigError(f"{setting} is empty: expected postgresql://user:password@host:port/database")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{setting} must start with postgresql:// (got scheme {parts.scheme or 'none'!r}): "
            "expected postgresql://user:password@host:port/database"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"{setting} has an invalid port: {exc}") from None
    if not parts.hostname:
        raise ConfigError(f"{setting} has no host: expected postgresql://user:password@host:port/database")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise ConfigError(f"{setting} must name exactly one database after the host, e.g. .../totesys")
    if not parts.username:
        raise ConfigError(f"{setting} has no user name: expected postgresql://user:password@host...")
    sslmode = sslrootcert = None
    for pair in filter(None, parts.query.split("&")):
        key, _, val = pair.partition("=")
        if key == "sslmode":
            if val not in _SSLMODES:
                raise ConfigError(f"{setting}: sslmode={val!r} is not one of {sorted(_SSLMODES)}")
            sslmode = val
        elif key == "sslrootcert":
            sslrootcert = unquote(val).strip()
            if not sslrootcert:
                raise ConfigError(f"{setting}: sslrootcert is empty: expected the path of a CA file")
        else:
            raise ConfigError(
                f"{setting}: unsupported URL parameter {key!r} (only sslmode and sslrootcert are supported)"
            )
    if sslrootcert and sslmode not in VERIFYING_SSLMODES:
        raise ConfigError(
            f"{setting}: sslrootcert is only used with sslmode=verify-ca or verify-full "
            f"(sslmode is {sslmode or 'not set'})"
        )
    return PgUrl(
        setting=setting,
        host=parts.hostname,
        port=port,
        database=unquote(database),
        user=unquote(parts.username),
        password=unquote(parts.password) if parts.password is not None else None,
        sslmode=sslmode,
        sslrootcert=sslrootcert,
    )


_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# The extract's look-back window (docs/reliability.md): long enough for the longest ToteSys write
# transaction plus clock skew; ToteSys' own transactions last well under a second. The same default
# locally, on Glue and in Terraform (`lookback_minutes`); 0 turns it off locally, and is refused on
# Glue (shared.runtime.glue.GLUE_MIN_LOOKBACK_MINUTES), where the window is what catches ties and late commits.
DEFAULT_LOOKBACK_MINUTES = 5


@dataclass(frozen=True)
class Settings:
    """Everything a job needs to know about where it runs.

    `totesys` / `warehouse` are None when the embedded PostgreSQL is to be used (the local default);
    the CLI resolves them to the embedded server's URLs before any job runs.
    """

    lake_root: str
    totesys: PgUrl | None = None
    warehouse: PgUrl | None = None
    ingestion_root: str | None = None  # defaults to <lake_root>/ingestion (a separate bucket on AWS)
    catalog_database: str = "totes"
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES

    @property
    def ingestion(self) -> str:
        return self.ingestion_root or join(self.lake_root, "ingestion")

    @property
    def processed(self) -> str:
        return join(self.lake_root, "processed")

    @property
    def quarantine(self) -> str:
        return join(self.lake_root, "quarantine")

    @property
    def state(self) -> str:
        """Bookmarks, run history and the lock: everything that describes this lake's progress."""
        return join(self.lake_root, "_state")

    @property
    def catalog_dir(self) -> Path:
        """The local Derby metastore lives with the lake it describes (local lakes only)."""
        if is_s3(self.lake_root):
            raise ConfigError(
                "LAKE_ROOT is on S3: the catalog is the Glue Data Catalog, not a local metastore"
            )
        return Path(self.lake_root) / "_catalog"

    def require_totesys(self) -> PgUrl:
        if self.totesys is None:
            raise ConfigError("TOTESYS_URL is not set (and no embedded PostgreSQL was started)")
        return self.totesys

    def require_warehouse(self) -> PgUrl:
        if self.warehouse is None:
            raise ConfigError("WAREHOUSE_URL is not set (and no embedded PostgreSQL was started)")
        return self.warehouse

    def with_databases(self, totesys: PgUrl, warehouse: PgUrl) -> Settings:
        return replace(self, totesys=self.totesys or totesys, warehouse=self.warehouse or warehouse)

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_lake: str = ".local/lake") -> Settings:
        """Build settings from environment-style variables (already merged with CLI overrides).

        TOTESYS_URL, WAREHOUSE_URL: postgresql:// URLs; unset means the embedded server.
        LAKE_ROOT: a local folder or s3://bucket/prefix. INGESTION_ROOT: optional separate location
        for the ingestion zone. CATALOG_DATABASE: catalog database name. LOOKBACK_MINUTES: extra
        window re-read by every extract (default DEFAULT_LOOKBACK_MINUTES, 0 = off).
        """
        lake = (env.get("LAKE_ROOT") or default_lake).strip()
        if not is_s3(lake):
            lake = str(Path(lake).expanduser().resolve())
        elif not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", lake):
            raise ConfigError(f"LAKE_ROOT={lake!r} is not a valid s3://bucket/prefix location")
        db = env.get("CATALOG_DATABASE", "totes").strip()
        if not _IDENT.match(db):
            raise ConfigError(f"CATALOG_DATABASE={db!r} must be a lower-case identifier ([a-z_][a-z0-9_]*)")
        raw_lookback = env.get("LOOKBACK_MINUTES", "").strip() or str(DEFAULT_LOOKBACK_MINUTES)
        try:
            lookback = int(raw_lookback)
        except ValueError:
            raise ConfigError(f"LOOKBACK_MINUTES={raw_lookback!r} is not a whole number of minutes") from None
        if not 0 <= lookback <= 7 * 24 * 60:
            raise ConfigError(f"LOOKBACK_MINUTES={lookback} must be between 0 and 10080 (one week)")
        ingestion = (env.get("INGESTION_ROOT") or "").strip() or None
        if ingestion and not is_s3(ingestion):
            ingestion = str(Path(ingestion).expanduser().resolve())
        return cls(
            lake_root=lake.rstrip("/") if is_s3(lake) else lake,
            totesys=parse_pg_url("TOTESYS_URL", env["TOTESYS_URL"]) if env.get("TOTESYS_URL") else None,
            warehouse=parse_pg_url("WAREHOUSE_URL", env["WAREHOUSE_URL"])
            if env.get("WAREHOUSE_URL")
            else None,
            ingestion_root=ingestion,
            catalog_database=db,
            lookback_minutes=lookback,
        )


def is_s3(location: str) -> bool:
    return location.startswith(("s3://", "s3a://"))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
