"""An emulated AWS account for the Terraform stack: moto in server mode, over TLS, with IAM enforced.

Used by tests/test_emulated_stack.py. `EmulatedAccount` starts `moto.server` as a child process on
a free 127.0.0.1 port, with a certificate made here (a throw-away CA and a leaf for 127.0.0.1), so
every client verifies TLS for real: boto3 with `verify=<ca.pem>`, Terraform's Go provider through
SSL_CERT_FILE. With `INITIAL_NO_AUTH_ACTION_COUNT` moto lets exactly the first few calls through
unauthenticated: they create one admin IAM user and its access key; from then on every request,
`terraform apply` included, must be signed by keys the emulated IAM knows and be allowed by their
policies. The process is stopped (and killed if it must be) when the context exits.

Run as a script (`python tests/moto_account.py --port P --cert C --key K`) this module is the
server itself: moto's own `moto.server.main`, after three adjustments of its access control
(`_adjust_moto`) without which least privilege cannot be tested at all; docs/deploying.md lists
them with the other differences between moto and AWS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "eu-west-2"  # terraform/terraform.tfvars.example
ADMIN_USER = "emulated-deployer"
# The unauthenticated calls moto allows before it enforces IAM: CreateUser, PutUserPolicy,
# CreateAccessKey (bootstrap_admin). One more unsigned call would be refused.
BOOTSTRAP_CALLS = 3
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10

ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


# ---------------------------------------------------------------------------------------------
# TLS: a CA and a server certificate for 127.0.0.1, valid for one day
# ---------------------------------------------------------------------------------------------


def make_tls_material(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) in `folder`; the key file is readable by its owner only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "totes emulated AWS test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # The CA alone in its own folder: SSL_CERT_DIR (Go) then trusts nothing else.
    (folder / "trust").mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = folder / "trust" / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.touch(mode=0o600)
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------


class EmulatedAccount:
    """A running moto server and the admin keys that the bootstrap calls created."""

    def __init__(self, endpoint: str, ca_bundle: Path, admin: Keys, log: Path) -> None:
        self.endpoint = endpoint
        self.ca_bundle = ca_bundle
        self.admin = admin
        self.log = log

    def client(self, service: str, keys: Keys | None = None) -> Any:
        """A boto3 client of `service` on the emulated account, signed by `keys` (the admin by default)."""
        import boto3
        from botocore.config import Config

        keys = keys or self.admin
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            verify=str(self.ca_bundle),
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            aws_session_token=keys.session_token,
            config=Config(
                retries={"max_attempts": 1},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"},
                proxies={},
            ),
        )

    def assume_role(self, role_arn: str, session: str) -> Keys:
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
        return Keys(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])

    def tool_env(self) -> dict[str, str]:
        """Environment for a tool (Terraform) that signs as the admin and trusts only the test's CA."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
        env.update(
            AWS_ACCESS_KEY_ID=self.admin.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.admin.secret_access_key,
            AWS_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            # Only the test's CA: the provider can then speak TLS to the emulator and nothing else.
            SSL_CERT_FILE=str(self.ca_bundle),
            SSL_CERT_DIR=str(self.ca_bundle.parent),
            NO_PROXY="127.0.0.1,localhost",
        )
        return env


def _wait_for_tls(port: int, ca_bundle: Path, process: subprocess.Popen, deadline: float) -> None:
    context = ssl.create_default_context(cafile=str(ca_bundle))
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"moto server not listening on 127.0.0.1:{port} after {START_TIMEOUT_S}s"
                ) from None
            time.sleep(0.2)


def bootstrap_admin(account: EmulatedAccount) -> Keys:
    """The BOOTSTRAP_CALLS unauthenticated calls: an admin user with an inline `*` policy and a key."""
    iam = account.client("iam", Keys("bootstrap", "bootstrap"))
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY))
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


@contextmanager
def emulated_account(folder: Path) -> Iterator[EmulatedAccount]:
    """Start the server, bootstrap the admin, prove IAM is enforced; stop the server on exit."""
    ca_bundle, cert, key = make_tls_material(folder / "tls")
    port = free_port()
    log = folder / "moto-server.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MOTO_")) and "proxy" not in k.lower()
    }
    env.update(INITIAL_NO_AUTH_ACTION_COUNT=str(BOOTSTRAP_CALLS), MOTO_PORT=str(port), PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "-H", "127.0.0.1", "-p", str(port), "-c", str(cert), "-k", str(key)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_for_tls(port, ca_bundle, process, time.monotonic() + START_TIMEOUT_S)
        account = EmulatedAccount(f"https://127.0.0.1:{port}", ca_bundle, Keys("", ""), log)
        account.admin = bootstrap_admin(account)
        yield account
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


def _adjust_moto() -> None:
    """Three adjustments of moto's access control, without which least privilege cannot be tested.

    Each is listed in docs/deploying.md ("Tested against an emulated AWS account"):

    1. Resources. moto checks every action of Secrets Manager, KMS and Glue against the resource
       `*` (only S3, IAM, STS and SQS say which resource a request is for), so a statement scoped
       to ARNs never matches and a scoped role is refused everything. moto asks a response class
       for `_determine_resource()` when it has one (IAM, STS and SQS do); these give Secrets
       Manager the secret's ARN (from SecretId), KMS the key's ARN (from KeyId, or for Decrypt
       from the ciphertext) and Glue the most specific ARN a request names (job, connection,
       table, database, else the catalog). AWS checks a catalog request against each of catalog,
       database and table; moto checks one resource.
    2. Action names. moto names an action by the request's signing name, which for CloudWatch is
       `monitoring`: `monitoring:PutMetricData`, where IAM policies say `cloudwatch:PutMetricData`.
    3. DeleteObjects. moto authorises a multi-object delete as s3:DeleteObject on the bucket's
       ARN, where AWS checks each object's; a role allowed `bucket/*` then gets every key back as
       AccessDenied. Here each key of the request is authorised, all or none.
    """
    from moto.glue.responses import GlueResponse
    from moto.iam.access_control import IAMRequest
    from moto.kms.responses import KmsResponse
    from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError
    from moto.s3.responses import S3Response
    from moto.secretsmanager.responses import SecretsManagerResponse

    def secret_arn(self: Any) -> str:
        secret_id = self._get_param("SecretId")
        if not secret_id:
            return "*"
        secret = self.backend.secrets.get(secret_id)
        if secret is not None:
            return str(secret.arn)
        if secret_id.startswith("arn:"):
            return str(secret_id)
        return f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{secret_id}"

    def key_arn(self: Any) -> str:
        key_id = self._get_param("KeyId")
        if not key_id and self._get_param("CiphertextBlob"):
            from moto.kms.utils import _deserialize_ciphertext_blob

            try:  # Decrypt names no key: the ciphertext does (moto's own format)
                key_id = _deserialize_ciphertext_blob(self._get_param("CiphertextBlob")).key_id
            except Exception:
                return "*"
        if not key_id:
            return "*"
        try:
            return str(self.kms_backend.describe_key(key_id).arn)
        except Exception:
            return str(key_id) if key_id.startswith("arn:") else "*"

    def glue_arn(self: Any) -> str:
        """The most specific resource of a Glue request (AWS checks each of catalog, database, table)."""
        # Glue speaks JSON: its parameters are the request body. Read from the body itself, as moto's
        # own attribute for them changed (GlueResponse.parameters: gone in moto 5.2.6).
        try:
            params = json.loads(self.body) if self.body else {}
        except (TypeError, ValueError):
            params = {}
        if not isinstance(params, dict):
            params = {}
        action = self._get_action()
        prefix = f"arn:aws:glue:{self.region}:{self.current_account}"
        if params.get("JobName"):
            return f"{prefix}:job/{params['JobName']}"
        if action in ("GetConnection", "UpdateConnection", "DeleteConnection") and params.get("Name"):
            return f"{prefix}:connection/{params['Name']}"
        database = params.get("DatabaseName")
        if database:
            table = params.get("TableName") or (params.get("TableInput") or {}).get("Name")
            if table is None and "Table" in action and action not in ("GetTables", "BatchDeleteTable"):
                table = params.get("Name")
            return f"{prefix}:table/{database}/{table}" if table else f"{prefix}:database/{database}"
        if action.endswith("Database") and action != "GetDatabases":
            name = params.get("Name") or (params.get("DatabaseInput") or {}).get("Name")
            if name:
                return f"{prefix}:database/{name}"
        if action == "GetDatabases":
            return f"{prefix}:catalog"
        return "*"

    SecretsManagerResponse._determine_resource = secret_arn  # type: ignore[attr-defined]
    KmsResponse._determine_resource = key_arn  # type: ignore[attr-defined]
    GlueResponse._determine_resource = glue_arn  # type: ignore[attr-defined]

    iam_request_init = IAMRequest.__init__

    def iam_action_names(self: Any, *args: Any, **kwargs: Any) -> None:
        iam_request_init(self, *args, **kwargs)
        if self._action.startswith("monitoring:"):
            self._action = "cloudwatch:" + self._action.split(":", 1)[1]

    IAMRequest.__init__ = iam_action_names  # type: ignore[method-assign]

    delete_keys = S3Response._bucket_response_delete_keys

    def delete_keys_per_object(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
        if authenticated:
            return delete_keys(self, bucket_name, authenticated)
        import xmltodict

        objects = xmltodict.parse(self.body, strip_whitespace=False)["Delete"].get("Object", [])
        try:
            for obj in objects if isinstance(objects, list) else [objects]:
                self._authenticate_and_authorize_s3_action(bucket_name=bucket_name, key_name=obj["Key"])
        except (BucketAccessDeniedError, S3AccessDeniedError):
            return delete_keys(self, bucket_name, authenticated=False)
        return delete_keys(self, bucket_name, authenticated=True)

    S3Response._bucket_response_delete_keys = delete_keys_per_object  # type: ignore[method-assign]


if __name__ == "__main__":
    _adjust_moto()
    from moto.server import main

    main(sys.argv[1:])
