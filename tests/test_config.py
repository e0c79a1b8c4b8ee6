"""The one typed config: built from environment-style mappings, failing loudly on bad input."""

from __future__ import annotations

import pytest

from shared.config import DEFAULT_LOOKBACK_MINUTES, ConfigError, Settings, parse_pg_url


def test_parses_a_full_url_into_jdbc_and_masks_the_password() -> None:
    url = parse_pg_url("TOTESYS_URL", "postgresql://reader:s%40cret@db.example:6543/totesys?sslmode=require")
    assert (url.host, url.port, url.database, url.user, url.password) == (
        "db.example",
        6543,
        "totesys",
        "reader",
        "s@cret",
    )
    assert url.jdbc_url == "jdbc:postgresql://db.example:6543/totesys?sslmode=require"
    assert url.jdbc_properties == {"user": "reader", "password": "s@cret", "driver": "org.postgresql.Driver"}
    assert "s@cret" not in url.masked and "s@cret" not in repr(url)
    assert url.conninfo == "postgresql://reader:s%40cret@db.example:6543/totesys?sslmode=require"


def test_verify_full_with_a_ca_file_reaches_jdbc_and_libpq_alike() -> None:
    url = parse_pg_url(
        "WAREHOUSE_URL",
        "postgresql://etl:pw@db.example/warehouse?sslmode=verify-full&sslrootcert=/etc/my%20ca.pem",
    )
    assert (url.sslmode, url.sslrootcert) == ("verify-full", "/etc/my ca.pem")
    query = "?sslmode=verify-full&sslrootcert=/etc/my%20ca.pem"
    assert url.jdbc_url == f"jdbc:postgresql://db.example:5432/warehouse{query}"
    assert url.conninfo == f"postgresql://etl:pw@db.example:5432/warehouse{query}"


def test_default_port_and_no_password() -> None:
    url = parse_pg_url("WAREHOUSE_URL", "postgres://etl@localhost/warehouse")
    assert url.port == 5432 and url.password is None
    assert "password" not in url.jdbc_properties


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "TOTESYS_URL is empty"),
        ("mysql://u:p@h/db", "must start with postgresql://"),
        ("postgresql://u:p@h:notaport/db", "invalid port"),
        ("postgresql://u:p@h:5432/", "must name exactly one database"),
        ("postgresql://h:5432/db", "no user name"),
        ("postgresql://u:p@:5432/db", "no host"),
        ("postgresql://u:p@h/db?sslmode=sometimes", "sslmode='sometimes'"),
        ("postgresql://u:p@h/db?application=x", "unsupported URL parameter 'application'"),
        ("postgresql://u:p@h/db?sslmode=verify-full&sslrootcert=", "sslrootcert is empty"),
        ("postgresql://u:p@h/db?sslmode=require&sslrootcert=/ca.pem", "sslrootcert is only used with"),
        ("postgresql://u:p@h/db?sslrootcert=/ca.pem", "(sslmode is not set)"),
    ],
)
def test_bad_urls_name_the_setting(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_pg_url("TOTESYS_URL", value)
    assert "TOTESYS_URL" in str(err.value) and message in str(err.value)
    assert ":p@" not in str(err.value)


def test_settings_defaults_put_all_state_under_the_lake(tmp_path) -> None:
    settings = Settings.from_env({"LAKE_ROOT": str(tmp_path / "lake")})
    assert settings.totesys is None and settings.warehouse is None
    assert settings.ingestion == f"{tmp_path}/lake/ingestion"
    assert settings.processed == f"{tmp_path}/lake/processed"
    assert settings.state == f"{tmp_path}/lake/_state"
    assert settings.catalog_dir == tmp_path / "lake" / "_catalog"
    assert settings.catalog_database == "totes" and settings.lookback_minutes == DEFAULT_LOOKBACK_MINUTES == 5


def test_s3_lake_with_a_separate_ingestion_bucket() -> None:
    settings = Settings.from_env(
        {
            "LAKE_ROOT": "s3://totes-processed/",
            "INGESTION_ROOT": "s3://totes-ingestion",
            "CATALOG_DATABASE": "totes_prod",
        }
    )
    assert settings.lake_root == "s3://totes-processed"
    assert settings.ingestion == "s3://totes-ingestion"
    assert settings.processed == "s3://totes-processed/processed"
    with pytest.raises(ConfigError, match="Glue Data Catalog"):
        _ = settings.catalog_dir


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKE_ROOT": "s3://Bad_Bucket"}, "LAKE_ROOT="),
        ({"CATALOG_DATABASE": "Totes-DB"}, "CATALOG_DATABASE="),
        ({"LOOKBACK_MINUTES": "ten"}, "LOOKBACK_MINUTES='ten'"),
        ({"LOOKBACK_MINUTES": "-5"}, "LOOKBACK_MINUTES=-5"),
        ({"TOTESYS_URL": "http://x/y"}, "TOTESYS_URL"),
    ],
)
def test_bad_settings_fail_naming_the_variable(env: dict[str, str], message: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env({"LAKE_ROOT": str(tmp_path), **env})
