"""`python -m portal.compose_buckets`: the container stack's two buckets, made once before the portal
starts (docker-compose.yml, the `createbuckets` job).

It runs with the S3 server's administrator credentials, which no portal process ever gets; the
portal's own identity may use only these two buckets (the `s3` service's identities file).

Invariants:
- Idempotent: a bucket that exists is left as it is, and so is any lifecycle configuration a bucket
  already has. The portal's nightly purge owns the server-log rule (`portal-server-logs-retention`,
  retention/server_log_store.py); this job only puts backstops on buckets with none, so it never
  takes away the portal's rule.
- Backstops: server logs expire after 185 days (6 calendar months never exceed it,
  `retention.windows.longest_months_in_days(6)`), exports after 8 (the hourly expiry removes them
  at 7 days after ready; the rule catches anything it missed).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SERVER_LOG_BACKSTOP_DAYS = 185
EXPORT_BACKSTOP_DAYS = 8
_NO_LIFECYCLE = {"NoSuchLifecycleConfiguration"}
_ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


def _backstop(*, rule_id: str, days: int) -> dict[str, Any]:
    return {"ID": rule_id, "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": days}}


def _create(client: S3Client, *, bucket: str, region: str) -> bool:
    try:
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _ALREADY_THERE:
            return False
        raise
    return True


def _has_lifecycle(client: S3Client, *, bucket: str) -> bool:
    try:
        client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _NO_LIFECYCLE:
            return False
        raise
    return True


def buckets_ensure(*, client: S3Client, export_bucket: str, log_bucket: str, region: str) -> list[str]:
    """Make both buckets and their backstop rules where missing; the lines say what was done."""
    lines = []
    for bucket, rule_id, days in (
        (export_bucket, "portal-exports-backstop", EXPORT_BACKSTOP_DAYS),
        (log_bucket, "portal-server-logs-backstop", SERVER_LOG_BACKSTOP_DAYS),
    ):
        created = _create(client, bucket=bucket, region=region)
        lines.append(f"bucket {bucket}: {'created' if created else 'already there'}")
        if _has_lifecycle(client, bucket=bucket):
            lines.append(f"bucket {bucket}: lifecycle configuration kept")
        else:
            client.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={"Rules": [_backstop(rule_id=rule_id, days=days)]},  # type: ignore[list-item]
            )
            lines.append(f"bucket {bucket}: objects expire after {days} days")
    return lines


def main() -> int:
    region = os.environ.get("AWS_S3_REGION_NAME", "eu-north-1")
    client = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name=region)
    for line in buckets_ensure(
        client=client,
        export_bucket=os.environ["EXPORT_BUCKET"],
        log_bucket=os.environ["LOG_BUCKET"],
        region=region,
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
