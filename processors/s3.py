"""Amazon S3: the server-log bucket's lifecycle rule and the export bucket's default encryption.

Nothing in S3 is linked to a customer (server logs hold IP addresses, not names; exports expire
after 7 days by the hourly expiry), so this connector exports and deletes nothing: it only checks,
daily, that the buckets still do what the policy says. The lifecycle rule itself is put back by
the nightly server-log purge (`retention.server_log_store.ensure_server_log_lifecycle`); the check
reads it with the same `server_log_lifecycle_status()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils.translation import gettext as _

from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ProcessorDeletion,
    ProcessorError,
    ProcessorUnavailable,
)
from retention.server_log_store import s3_client, server_log_lifecycle_status

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from processors.ledger import JobLedger

NO_ENCRYPTION = "ServerSideEncryptionConfigurationNotFoundError"
ENCRYPTING_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


@contextmanager
def s3_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "?")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"s3: {action}: {code}"
        if status is None or status >= 500 or code in ("SlowDown", "Throttling"):
            raise ProcessorUnavailable(message, status=status) from error
        raise ProcessorError(message, status=status) from error
    except BotoCoreError as error:
        raise ProcessorUnavailable(f"s3: {action}: {type(error).__name__}") from error


class S3Connector(Connector):
    key = "s3"
    name = "Amazon S3"
    processor = "aws"
    categories = ("server_logs", "access_request_exports")
    erases_customers = False

    def __init__(self, *, client: S3Client | None = None) -> None:
        self.log_bucket = settings.SERVER_LOGS_BUCKET
        self.export_bucket = settings.AWS_STORAGE_BUCKET_NAME
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def status(self) -> ConnectorStatus:
        if not (self.log_bucket or self.export_bucket):
            return ConnectorStatus(
                False,
                _("Off: neither SERVER_LOGS_BUCKET nor AWS_STORAGE_BUCKET_NAME is set (local files)."),
            )
        buckets = ", ".join(bucket for bucket in (self.log_bucket, self.export_bucket) if bucket)
        return ConnectorStatus(True, _("On: %(buckets)s.") % {"buckets": buckets})

    def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
        # Nothing in the buckets is linked to a customer; see the module docstring.
        return ProcessorDeletion(self.key, subject.customer_id, complete=True)

    def check_settings(self) -> list[Drift]:
        drift = []
        if self.log_bucket:
            drift.extend(self._lifecycle_drift())
        if self.export_bucket:
            drift.extend(self._encryption_drift())
        return drift

    def _lifecycle_drift(self) -> list[Drift]:
        with s3_errors("read the server-log lifecycle rule"):
            status = server_log_lifecycle_status(client=self.client)
        if status.ok:
            return []
        return [
            Drift(
                processor=self.key,
                setting=_("Lifecycle rule for %(prefix)s in %(bucket)s")
                % {"prefix": status.prefix or "/", "bucket": status.bucket},
                expected=_("expire after %(days)s days, and no rule expiring sooner")
                % {"days": status.expected_days},
                actual=status.describe(),
                fix=_(
                    "The nightly server-log purge puts the rule back (`manage.py purge --category "
                    "server_logs`); remove or lengthen any other rule that expires the logs sooner."
                ),
            )
        ]

    def _encryption_drift(self) -> list[Drift]:
        algorithms = self._default_encryption()
        if algorithms and all(algorithm in ENCRYPTING_ALGORITHMS for algorithm in algorithms):
            return []
        return [
            Drift(
                processor=self.key,
                setting=_("Default encryption of %(bucket)s") % {"bucket": self.export_bucket},
                expected=_("SSE-S3 (AES256) or SSE-KMS"),
                actual=", ".join(algorithms) or _("none"),
                fix=_(
                    "Turn on default encryption for the export bucket: aws s3api put-bucket-encryption "
                    "--bucket %(bucket)s --server-side-encryption-configuration "
                    '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}\''
                )
                % {"bucket": self.export_bucket},
            )
        ]

    def _default_encryption(self) -> list[str]:
        try:
            with s3_errors("read the export bucket's encryption"):
                response: Any = self.client.get_bucket_encryption(Bucket=self.export_bucket)
        except ProcessorError as error:
            if NO_ENCRYPTION in str(error):
                return []
            raise
        rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        return [
            str(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "?")) for rule in rules
        ]
