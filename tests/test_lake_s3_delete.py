"""S3Storage.delete does not report success for objects S3 refused to delete.

DeleteObjects answers HTTP 200 and lists the keys it could not delete under `Errors` (AccessDenied
for a key the caller may not delete, an object lock...). Found by the least-privilege test of the
emulated stack (tests/test_emulated_stack.py), where the deployed Glue role's multi-object deletes
came back as per-key errors and the prefix silently stayed. Here, in-process moto: a bucket policy
denies deleting under one prefix; the single-object DeleteObject of the prefix key itself is not
denied, so only the multi-object delete reports the refusal.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from shared.lake.storage import S3Storage

pytestmark = pytest.mark.integration  # moto's S3


def test_s3_delete_raises_when_s3_kept_objects_back() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        for key in ("kept/part-0.json", "kept/part-1.json", "gone/part-0.json"):
            client.put_object(Bucket="lake", Key=key, Body=b"{}")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:DeleteObject",
                    "Resource": "arn:aws:s3:::lake/kept/*",
                }
            ],
        }
        client.put_bucket_policy(Bucket="lake", Policy=json.dumps(policy))
        store = S3Storage(client)

        store.delete("s3://lake/gone")
        assert not store.exists("s3://lake/gone")
        with pytest.raises(
            OSError,
            match=r"could not delete 2 of 2 objects under s3://lake/kept/, e\.g\. kept/part-0\.json: AccessDenied",
        ):
            store.delete("s3://lake/kept")
        assert store.list_names("s3://lake/kept") == ["part-0.json", "part-1.json"]
