"""A real S3 HTTP endpoint for the suite: moto's server on 127.0.0.1, spoken to through boto3.

One server per test session, one fresh bucket per test. Nothing reaches AWS: the endpoint is always
the local server, the credentials are dummies, and boto3's config files and the instance-metadata
lookup are switched off so a developer's own AWS setup cannot leak in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest
from django.test import override_settings
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_REGION: Final = "eu-north-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server running in this process, on a free loopback port."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        # werkzeug logs every request at INFO; a failing test's output should show the test.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> S3Client:
    """A boto3 client for the test's own use (arranging objects, checking what is left)."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=S3_REGION)


@pytest.fixture
def server_log_bucket(s3: S3Client, s3_endpoint: str, settings: Any) -> str:
    """A new, empty bucket that the portal's settings point the server-log purge at."""
    bucket = f"server-logs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
    settings.SERVER_LOGS_BUCKET = bucket
    settings.SERVER_LOGS_PREFIX = "logs/"
    settings.AWS_S3_ENDPOINT_URL = s3_endpoint
    settings.AWS_S3_REGION_NAME = S3_REGION
    return bucket


@pytest.fixture(autouse=True, scope="session")
def _server_logs_stay_in_the_test_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Every purge_all() in the suite runs the server-log purge too: it must never sweep a developer's
    # .data/server-logs, nor a bucket their .env names. Tests that want logs set up their own.
    with override_settings(
        SERVER_LOGS_BUCKET="", SERVER_LOGS_DIR=tmp_path_factory.mktemp("server-logs") / "none"
    ):
        yield
