"""What Terraform creates on AWS, in the compose `moto` service, for `make docker-run` only.

The Glue scripts read their database logins from Secrets Manager and keep the lake on S3, exactly as
on AWS (shared/runtime/glue.py); in the local Glue image both are moto in server mode (AWS_ENDPOINT_URL).
This creates the two lake buckets (LAKE_ROOT, INGESTION_ROOT) and puts the two secrets
(TOTESYS_SECRET_ID, WAREHOUSE_SECRET_ID): the compose databases' logins from docker/.env, in the
JSON the Glue seam reads, with `sslmode=disable` because the compose PostgreSQL servers have no TLS
(on AWS the secrets leave it out and the seam's TLS default applies). Idempotent: a second run
overwrites the secrets and keeps the buckets.

It refuses to run unless AWS_ENDPOINT_URL names a local endpoint, so it can never write passwords
into a real account. Run by the `jobs` service before docker/run_glue_jobs.sh; tested in
tests/test_docker_files.py against moto.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DATABASES = {"totesys": "TOTESYS", "warehouse": "WAREHOUSE"}
LOCAL_HOSTS = {"moto", "localhost", "127.0.0.1"}


class LocalAwsError(Exception):
    """A setting this script needs is missing, or the endpoint is not a local one."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise LocalAwsError(f"{name} is not set (docker/docker-compose.yml and docker/.env set it)")
    return value


def check_local_endpoint(env: Mapping[str, str]) -> str:
    endpoint = _require(env, "AWS_ENDPOINT_URL")
    host = urlsplit(endpoint).hostname or ""
    if host not in LOCAL_HOSTS:
        raise LocalAwsError(
            f"AWS_ENDPOINT_URL={endpoint!r} is not the compose moto service ({', '.join(sorted(LOCAL_HOSTS))}): "
            "this script puts local passwords into Secrets Manager and must never reach AWS"
        )
    return endpoint


def secret_documents(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{secret id: JSON document} for the two compose databases (host = the compose service name)."""
    documents = {}
    for database, prefix in DATABASES.items():
        documents[_require(env, f"{prefix}_SECRET_ID")] = {
            "host": database,
            "port": 5432,
            "dbname": (env.get(f"{prefix}_DB") or database).strip(),
            "username": _require(env, f"{prefix}_USER"),
            "password": _require(env, f"{prefix}_PASSWORD"),
            "sslmode": "disable",
        }
    return documents


def buckets(env: Mapping[str, str]) -> list[str]:
    names = []
    for setting in ("LAKE_ROOT", "INGESTION_ROOT"):
        location = urlsplit(_require(env, setting))
        if location.scheme != "s3" or not location.netloc:
            raise LocalAwsError(f"{setting} must be s3://bucket[/prefix], as on Glue")
        names.append(location.netloc)
    return sorted(set(names))


def provision(env: Mapping[str, str], s3: Any, secrets: Any) -> None:
    """Create the buckets and put the secrets (boto3 S3 and Secrets Manager clients)."""
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "eu-west-2"
    for bucket in buckets(env):
        try:
            if region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    for secret_id, document in secret_documents(env).items():
        text = json.dumps(document)
        try:
            secrets.create_secret(Name=secret_id, SecretString=text)
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=secret_id, SecretString=text)


def main() -> int:
    try:
        check_local_endpoint(os.environ)
        import boto3

        provision(os.environ, boto3.client("s3"), boto3.client("secretsmanager"))
    except LocalAwsError as exc:
        print(f"local AWS: {exc}", file=sys.stderr)
        return 2
    print(
        f"local AWS: buckets {', '.join(buckets(os.environ))} and secrets {', '.join(secret_documents(os.environ))}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
