"""The S3 connector's daily check, through boto3 against a local S3 (moto's server): the server-log
bucket's lifecycle rule and the export bucket's default encryption, drift found and cleared."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from processors.models import ProcessorCheck
from processors.registry import S3Connector
from processors.selectors import processor_problems
from processors.services import check_processors
from processors.tasks import check_processors_task
from retention.server_log_store import LIFECYCLE_RULE_ID, ensure_server_log_lifecycle
from retention.windows import longest_months_in_days
from tests.fixtures_s3 import S3_REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.django_db

# /healthz names each check (the drift included) only to a monitor with the configured token.
MONITOR_TOKEN = "monitor-token-for-the-tests"


@pytest.fixture(autouse=True)
def _monitor_token(settings: Any) -> None:
    settings.HEALTHZ_TOKEN = MONITOR_TOKEN


AES256 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


@pytest.fixture
def export_bucket(s3: S3Client, s3_endpoint: str, settings: Any) -> str:
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=AES256)  # type: ignore[arg-type]
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_ENDPOINT_URL = s3_endpoint
    settings.AWS_S3_REGION_NAME = S3_REGION
    return bucket


def check_s3() -> ProcessorCheck:
    (check,) = check_processors(connectors=[S3Connector()])
    return check


def test_s3_is_off_without_a_bucket(no_processors: None) -> None:
    status = S3Connector().status()
    assert not status.configured
    assert "SERVER_LOGS_BUCKET" in status.reason


def test_a_missing_lifecycle_rule_is_drift_until_the_purge_puts_it_back(server_log_bucket: str) -> None:
    check = check_s3()

    assert not check.ok
    (drift,) = check.drift
    assert drift["setting"] == f"Lifecycle rule for logs/ in {server_log_bucket}"
    assert drift["expected"].startswith(f"expire after {longest_months_in_days(6)} days")
    assert "has no lifecycle rule" in drift["actual"]
    assert "purge --category server_logs" in drift["fix"]

    ensure_server_log_lifecycle()

    assert check_s3().ok


def test_a_rule_that_expires_too_soon_is_drift(server_log_bucket: str, s3: S3Client) -> None:
    s3.put_bucket_lifecycle_configuration(
        Bucket=server_log_bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": LIFECYCLE_RULE_ID,
                    "Filter": {"Prefix": "logs/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )

    (drift,) = check_s3().drift

    assert "does not expire after 185 days" in drift["actual"]


def test_an_export_bucket_without_default_encryption_is_drift_until_it_is_turned_on(
    export_bucket: str, s3: S3Client
) -> None:
    assert check_s3().ok
    s3.delete_bucket_encryption(Bucket=export_bucket)

    check = check_s3()

    assert not check.ok
    (drift,) = check.drift
    assert (drift["setting"], drift["actual"]) == (f"Default encryption of {export_bucket}", "none")
    assert f"put-bucket-encryption --bucket {export_bucket}" in drift["fix"]

    s3.put_bucket_encryption(Bucket=export_bucket, ServerSideEncryptionConfiguration=AES256)  # type: ignore[arg-type]

    assert check_s3().ok


def test_the_daily_task_records_drift_that_healthz_and_the_admin_show_without_failing(
    server_log_bucket: str, export_bucket: str, client: Client
) -> None:
    assert check_processors_task() == {"s3": False}
    assert ProcessorCheck.objects.get(processor="s3").ok is False
    problems = processor_problems()
    assert problems and problems[0].startswith("Amazon S3: Lifecycle rule for logs/")

    response = client.get(
        "/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {MONITOR_TOKEN}"
    )

    # Drift is a policy mismatch for staff, not an outage: the status stays 200.
    assert response.status_code == 200
    (drift,) = [value for name, value in response.json().items() if name.startswith("ProcessorDrift")]
    assert drift.startswith("Warning: Amazon S3: Lifecycle rule for logs/")

    ensure_server_log_lifecycle()
    assert check_processors_task() == {"s3": True}
    assert all(
        value == "OK"
        for value in client.get(
            "/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {MONITOR_TOKEN}"
        )
        .json()
        .values()
    )


def test_healthz_still_answers_503_for_an_outage_next_to_drift(
    server_log_bucket: str, client: Client, settings: Any
) -> None:
    check_processors_task()
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there

    response = client.get(
        "/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {MONITOR_TOKEN}"
    )

    assert response.status_code == 503


def test_healthz_says_nothing_of_processors_when_none_is_configured(
    no_processors: None, client: Client
) -> None:
    body = client.get(
        "/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {MONITOR_TOKEN}"
    ).json()

    assert not [name for name in body if name.startswith("ProcessorDrift")]
