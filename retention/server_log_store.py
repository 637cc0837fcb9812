"""Where the server logs live, and the S3 lifecycle rule that expires them: the storage side of the
server-log purge (`retention.purges.server_log_purge`), and the processor connector for AWS S3 logs.

Two stores behind one interface: the S3 bucket and prefix in `SERVER_LOGS_BUCKET` /
`SERVER_LOGS_PREFIX` when a bucket is configured, else the local directory `SERVER_LOGS_DIR` (the
embedded default). A store lists its objects a page at a time with their creation day, and deletes
keys, reporting the keys it could not delete instead of raising.

Invariants:
- An object's creation day is its S3 LastModified, or its file's mtime, as a date in Europe/Oslo
  (the default time zone, whatever zone a request has activated): the zone the policy's months are
  counted in. Both stamps are at or after the moment the log was created (an overwrite or an
  append moves them forward), so a wrong stamp can only keep a log longer, never delete it early.
- The portal owns exactly one lifecycle rule, found by its fixed ID (`LIFECYCLE_RULE_ID`). Other
  rules on the bucket are written back as they were read; since a PUT replaces the whole
  configuration, it is sent only when our rule is missing or differs.
- Our rule expires objects after `longest_months_in_days(server_log_months)` days: S3 counts days,
  so it never deletes an object before its window in calendar months has closed.
- Nothing here talks to S3 unless a bucket is configured; tests point the endpoint at a local server.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from retention.windows import RetentionPeriods, longest_months_in_days

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

LIFECYCLE_RULE_ID = "portal-server-logs-retention"
# list_objects_v2 returns, and delete_objects accepts, at most this many keys per call.
S3_MAX_KEYS = 1000
# DeletionLog.model's max_length; a store's label is written there.
LABEL_LENGTH = 100

LifecycleRule = dict[str, Any]


@dataclass(frozen=True)
class LogObject:
    key: str
    created_on: date


@dataclass(frozen=True)
class LogPage:
    objects: list[LogObject]
    # Where the next page starts; None when this page was the last one.
    next_position: str | None


class ServerLogStore(Protocol):
    """A place server logs are kept: an S3 bucket/prefix or a local directory."""

    # What the deletion log and the purge run call the place: "s3:<bucket>/<prefix>", "file:<dir>".
    label: str

    def list_page(self, *, position: str | None, page_size: int) -> LogPage: ...

    def delete(self, *, keys: Sequence[str]) -> dict[str, str]:
        """Delete `keys`; returns the keys that could not be deleted, each with an error code."""
        ...


def creation_day(moment: datetime) -> date:
    # The default zone, not the active one: a preview asked for from a request with another zone
    # activated must count the same days as the nightly run.
    return moment.astimezone(timezone.get_default_timezone()).date()


def fit_label(label: str) -> str:
    """`label`, shortened in the middle if it does not fit in the deletion log's model column."""
    if len(label) <= LABEL_LENGTH:
        return label
    head = label.split(":", 1)[0] + ":"
    return head + "…" + label[-(LABEL_LENGTH - len(head) - 1) :]


def s3_client() -> S3Client:
    # Credentials come from the standard AWS variables (or an instance role); boto3 finds them.
    # Standard retry mode retries throttling and 5xx answers of whole calls with backoff; the
    # per-key errors inside a successful delete_objects answer are the purge's to retry.
    return boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL or None,
        region_name=settings.AWS_S3_REGION_NAME,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60),
    )


class S3LogStore:
    def __init__(self, *, bucket: str, prefix: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or s3_client()
        self.label = fit_label(f"s3:{bucket}/{prefix}")

    def list_page(self, *, position: str | None, page_size: int) -> LogPage:
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": self.prefix,
            "MaxKeys": min(page_size, S3_MAX_KEYS),
        }
        if position is not None:
            request["ContinuationToken"] = position
        response = self.client.list_objects_v2(**request)
        objects = [
            LogObject(item["Key"], creation_day(item["LastModified"]))
            for item in response.get("Contents", [])
        ]
        next_position = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return LogPage(objects, next_position)

    def delete(self, *, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        # Quiet: the answer lists only the keys that failed. S3 also reports a key that was already
        # gone (e.g. expired by the lifecycle rule meanwhile) as deleted.
        response = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        return {error.get("Key", ""): error.get("Code", "Unknown") for error in response.get("Errors", [])}


class LocalLogStore:
    def __init__(self, *, directory: Path) -> None:
        self.directory = directory
        self.label = fit_label(f"file:{directory}")

    @cached_property
    def keys(self) -> list[str]:
        # Listed once per run and then paged through, like an S3 listing; files written meanwhile
        # are new and would not be due anyway. Symbolic links are not log files of ours: their
        # mtime is their target's, and the target may be anywhere.
        if not self.directory.is_dir():
            return []
        found = []
        for folder, _subfolders, files in os.walk(self.directory, followlinks=False):
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    found.append(path.relative_to(self.directory).as_posix())
        return sorted(found)

    def list_page(self, *, position: str | None, page_size: int) -> LogPage:
        start = 0 if position is None else bisect.bisect_right(self.keys, position)
        chunk = self.keys[start : start + page_size]
        objects = []
        for key in chunk:
            try:
                modified = (self.directory / key).lstat().st_mtime
            except FileNotFoundError:
                continue  # rotated away since the listing
            objects.append(LogObject(key, creation_day(datetime.fromtimestamp(modified, tz=UTC))))
        next_position = chunk[-1] if start + page_size < len(self.keys) else None
        return LogPage(objects, next_position)

    def delete(self, *, keys: Sequence[str]) -> dict[str, str]:
        failures = {}
        for key in keys:
            try:
                (self.directory / key).unlink()
            except FileNotFoundError:
                pass  # gone already, which is what was asked; S3 answers the same way
            except OSError as error:
                failures[key] = errno.errorcode.get(error.errno or 0, type(error).__name__)
        return failures


def server_log_store(*, client: S3Client | None = None) -> S3LogStore | LocalLogStore:
    """The store the settings name: the S3 bucket if one is configured, else the local directory."""
    if settings.SERVER_LOGS_BUCKET:
        return S3LogStore(
            bucket=settings.SERVER_LOGS_BUCKET, prefix=settings.SERVER_LOGS_PREFIX, client=client
        )
    return LocalLogStore(directory=Path(settings.SERVER_LOGS_DIR))


# --- The lifecycle rule -----------------------------------------------------------------------------


class LifecycleChange(StrEnum):
    NOT_CONFIGURED = "not_configured"  # no bucket: logs are local files, swept by the purge alone
    UNCHANGED = "unchanged"
    CREATED = "created"
    CORRECTED = "corrected"


@dataclass(frozen=True)
class LifecycleStatus:
    """The bucket's lifecycle configuration compared with what the policy needs."""

    bucket: str  # "" when no bucket is configured
    prefix: str
    expected_days: int
    rule: LifecycleRule | None  # our rule as the bucket has it; None when missing
    # Other enabled rules that may expire objects under our prefix sooner than the policy allows.
    early_rule_ids: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.bucket)

    @property
    def present(self) -> bool:
        return self.rule is not None

    @property
    def correct(self) -> bool:
        return self.rule is not None and _same_rule(
            self.rule, expected_rule(prefix=self.prefix, days=self.expected_days)
        )

    @property
    def ok(self) -> bool:
        return not self.configured or (self.correct and not self.early_rule_ids)

    def describe(self) -> str:
        """One or two sentences for staff: what is wrong, or that all is well."""
        if not self.configured:
            return _("No server-log bucket is configured; the nightly purge sweeps the local log directory.")
        values = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "days": self.expected_days,
            "rules": ", ".join(self.early_rule_ids),
        }
        sentences = []
        if not self.present:
            sentences.append(_("The bucket %(bucket)s has no lifecycle rule expiring %(prefix)s.") % values)
        elif not self.correct:
            sentences.append(
                _("The lifecycle rule for %(prefix)s in %(bucket)s does not expire after %(days)s days.")
                % values
            )
        if self.early_rule_ids:
            sentences.append(
                _("Other lifecycle rules may delete logs before %(days)s days: %(rules)s.") % values
            )
        return " ".join(sentences) or (
            _("The lifecycle rule expires %(prefix)s in %(bucket)s after %(days)s days.") % values
        )


def expected_rule(*, prefix: str, days: int) -> LifecycleRule:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }


def _without_empty(value: Any) -> Any:
    # S3 may leave out what is empty (a whole-bucket rule's `"Prefix": ""`), or send it back.
    if isinstance(value, dict):
        kept = {key: _without_empty(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", {}, [])}
    return value


def _same_rule(found: LifecycleRule, expected: LifecycleRule) -> bool:
    # Anything more on our rule (a transition, a tag filter, a legacy top-level Prefix) is a
    # difference too: the rule is the policy's, and only the policy's.
    return bool(_without_empty(found) == _without_empty(expected))


def _rule_prefix(rule: LifecycleRule) -> str:
    rule_filter = rule.get("Filter") or {}
    return str(
        rule_filter.get("Prefix") or (rule_filter.get("And") or {}).get("Prefix") or rule.get("Prefix") or ""
    )


def _expires_early(rule: LifecycleRule, *, prefix: str, days: int) -> bool:
    if rule.get("Status") != "Enabled":
        return False
    theirs = _rule_prefix(rule)
    if not (prefix.startswith(theirs) or theirs.startswith(prefix)):
        return False
    expiration = rule.get("Expiration") or {}
    return "Date" in expiration or int(expiration.get("Days") or days) < days


def _read_lifecycle(client: S3Client, bucket: str) -> tuple[list[LifecycleRule], dict[str, Any]]:
    """The bucket's rules, and what else its configuration holds that a PUT must send back."""
    try:
        response = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return [], {}
        raise
    rules = [cast(LifecycleRule, dict(rule)) for rule in response.get("Rules", [])]
    keep = {}
    if response.get("TransitionDefaultMinimumObjectSize"):
        keep["TransitionDefaultMinimumObjectSize"] = response["TransitionDefaultMinimumObjectSize"]
    return rules, keep


def _status_from_rules(rules: list[LifecycleRule], *, bucket: str, prefix: str, days: int) -> LifecycleStatus:
    ours = next((rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID), None)
    early = tuple(
        str(rule.get("ID") or "?")
        for rule in rules
        if rule.get("ID") != LIFECYCLE_RULE_ID and _expires_early(rule, prefix=prefix, days=days)
    )
    return LifecycleStatus(bucket=bucket, prefix=prefix, expected_days=days, rule=ours, early_rule_ids=early)


def server_log_lifecycle_status(
    *, periods: RetentionPeriods | None = None, client: S3Client | None = None
) -> LifecycleStatus:
    """Whether the bucket's lifecycle rule for the server logs is present and correct (reads only)."""
    periods = periods or RetentionPeriods.from_settings()
    days = longest_months_in_days(periods.server_log_months)
    bucket, prefix = settings.SERVER_LOGS_BUCKET, settings.SERVER_LOGS_PREFIX
    if not bucket:
        return LifecycleStatus(bucket="", prefix=prefix, expected_days=days, rule=None)
    rules, _kept = _read_lifecycle(client or s3_client(), bucket)
    return _status_from_rules(rules, bucket=bucket, prefix=prefix, days=days)


def ensure_server_log_lifecycle(
    *, periods: RetentionPeriods | None = None, client: S3Client | None = None
) -> LifecycleChange:
    """Add or correct our lifecycle rule, leaving every other rule as it is."""
    periods = periods or RetentionPeriods.from_settings()
    days = longest_months_in_days(periods.server_log_months)
    bucket, prefix = settings.SERVER_LOGS_BUCKET, settings.SERVER_LOGS_PREFIX
    if not bucket:
        return LifecycleChange.NOT_CONFIGURED
    client = client or s3_client()
    # Read, change, write: S3 has no conditional PUT for lifecycle configurations. The purge is
    # single-flight, so the portal never races itself; a person editing the rules by hand at the
    # same second could lose their edit, and the status check would then show it.
    rules, kept = _read_lifecycle(client, bucket)
    status = _status_from_rules(rules, bucket=bucket, prefix=prefix, days=days)
    if status.early_rule_ids:
        logger.warning(
            "bucket %s: lifecycle rules %s may expire server logs before %s days",
            bucket,
            ", ".join(status.early_rule_ids),
            days,
        )
    ours_count = sum(1 for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID)
    if status.correct and ours_count == 1:
        return LifecycleChange.UNCHANGED
    desired = expected_rule(prefix=prefix, days=days)
    # Ours keeps its place among the rules (a duplicate of it goes); a new one goes last.
    position = next((i for i, rule in enumerate(rules) if rule.get("ID") == LIFECYCLE_RULE_ID), len(rules))
    others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
    updated = [*others[:position], desired, *others[position:]]
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=cast(Any, {"Rules": updated}), **kept
    )
    change = LifecycleChange.CORRECTED if status.present else LifecycleChange.CREATED
    logger.info("bucket %s: server-log lifecycle rule %s (%s days on %r)", bucket, change, days, prefix)
    return change
