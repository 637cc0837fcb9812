"""The container stack's bucket job (portal/compose_buckets.py), against a real S3 HTTP server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from portal.compose_buckets import buckets_ensure
from tests.fixtures_s3 import S3_REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"portal-exports-{suffix}", f"portal-server-logs-{suffix}"


def rules(s3: S3Client, bucket: str) -> list[tuple[str, int]]:
    found = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return [(rule["ID"], rule["Expiration"]["Days"]) for rule in found]


def test_it_makes_both_buckets_with_their_backstop_rules(s3: S3Client) -> None:
    export_bucket, log_bucket = names()

    buckets_ensure(client=s3, export_bucket=export_bucket, log_bucket=log_bucket, region=S3_REGION)

    assert {export_bucket, log_bucket} <= {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert rules(s3, export_bucket) == [("portal-exports-backstop", 8)]
    assert rules(s3, log_bucket) == [("portal-server-logs-backstop", 185)]


def test_a_second_run_keeps_the_buckets_and_the_portals_own_rule(s3: S3Client) -> None:
    export_bucket, log_bucket = names()
    buckets_ensure(client=s3, export_bucket=export_bucket, log_bucket=log_bucket, region=S3_REGION)
    s3.put_object(Bucket=export_bucket, Key="exports/1-abc.zip", Body=b"zip")
    # What the nightly purge puts there (retention/server_log_store.py).
    s3.put_bucket_lifecycle_configuration(
        Bucket=log_bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "portal-server-logs-retention",
                    "Filter": {"Prefix": "logs/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 185},
                }
            ]
        },
    )

    lines = buckets_ensure(client=s3, export_bucket=export_bucket, log_bucket=log_bucket, region=S3_REGION)

    assert f"bucket {log_bucket}: already there" in lines
    assert rules(s3, log_bucket) == [("portal-server-logs-retention", 185)]
    assert s3.get_object(Bucket=export_bucket, Key="exports/1-abc.zip")["Body"].read() == b"zip"
