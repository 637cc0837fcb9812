"""The server-log purge: logs older than six months go, in pages of a thousand, from an S3 bucket
(moto's server on 127.0.0.1, through boto3) or from a local directory; the bucket's own lifecycle
rule is kept right; and nothing goes a day early.

"Today" is 15 October 2026 throughout. A log written on 14 April 2026 (Oslo) may be deleted from
15 October; one written on 15 April is kept until 15 October and goes on 16 October. Logs are
given their age honestly: S3 stamps LastModified from its own clock, and time-machine moves the
clock of the whole process, moto's server thread included, while they are uploaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from botocore.exceptions import ClientError

from retention import server_log_store as server_logs
from retention.models import DeletionLog, PurgeRun
from retention.purges.server_log_purge import MAX_REPORTED_KEYS, ServerLogPurge
from retention.server_log_store import LIFECYCLE_RULE_ID, LifecycleChange, fit_label
from retention.services import PURGES, purge_preview, purge_run
from retention.windows import longest_months_in_days, server_log_cutoff, server_log_deletable_on

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.django_db

OSLO = ZoneInfo("Europe/Oslo")
TODAY = date(2026, 10, 15)
CUTOFF = date(2026, 4, 15)  # logs written before this day are past their six months on TODAY
LONG_AGO = datetime(2026, 3, 2, 9, 0, tzinfo=OSLO)
LAST_MONTH = datetime(2026, 9, 14, 9, 0, tzinfo=OSLO)
LOG_LINE = b'203.0.113.7 - - [02/Mar/2026:09:00:00 +0100] "GET /wp-login.php HTTP/1.1" 200 512\n'


def oslo(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with time_machine.travel(oslo(TODAY, 3), tick=False):
        yield


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoffs the purge asked for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(ServerLogPurge, "wait_before_retry", lambda self, *, seconds: asked.append(seconds))
    return asked


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the S3 operations the portal's own clients call."""
    calls: list[str] = []
    build = server_logs.s3_client

    def recording_client() -> Any:
        client = build()
        client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
        return client

    monkeypatch.setattr(server_logs, "s3_client", recording_client)
    return calls


def upload(s3: S3Client, bucket: str, keys: Iterable[str], *, written_at: datetime) -> None:
    with time_machine.travel(written_at, tick=False), ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=LOG_LINE), keys))


def keys_in(s3: S3Client, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def lifecycle_rules(s3: S3Client, bucket: str) -> list[dict[str, Any]]:
    try:
        return [dict(rule) for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
        return []


def our_rule(days: int = 185, prefix: str = "logs/") -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }


def deny_deleting(s3: S3Client, bucket: str, key_pattern: str) -> None:
    # The way S3 itself refuses single keys inside a successful delete_objects call: the bucket's
    # policy denies s3:DeleteObject on them, and the answer lists them under Errors.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{bucket}/{key_pattern}",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


# --- The window --------------------------------------------------------------------------------


def test_the_window_the_tests_rely_on() -> None:
    periods = ServerLogPurge().periods
    assert server_log_cutoff(TODAY, periods=periods) == CUTOFF
    assert server_log_deletable_on(date(2026, 4, 14), periods=periods) == TODAY
    assert longest_months_in_days(periods.server_log_months) == 185


def test_the_purge_runs_with_the_others_after_contracts_and_before_sessions() -> None:
    order = list(PURGES)
    assert PURGES["server_logs"] is ServerLogPurge
    assert order.index("contracts") < order.index("server_logs") < order.index("sessions_and_audit")


# --- S3 ----------------------------------------------------------------------------------------


def test_old_logs_go_a_thousand_keys_per_batch_and_each_batch_is_logged(
    s3: S3Client, server_log_bucket: str
) -> None:
    # Old and recent logs alternate, so every page of the listing holds some of each.
    names = [f"logs/2026/web-{number:04d}.log" for number in range(2500)]
    old, recent = names[0::2], names[1::2]
    upload(s3, server_log_bucket, old, written_at=LONG_AGO)
    upload(s3, server_log_bucket, recent, written_at=LAST_MONTH)
    outside = ["other/web-old.log", "logs-archive/web-old.log", "logs"]
    upload(s3, server_log_bucket, outside, written_at=LONG_AGO)

    run = purge_run(category="server_logs")

    label = f"s3:{server_log_bucket}/logs/"
    assert run.status == PurgeRun.Status.FINISHED
    assert run.counts == {label: 1250}
    assert run.batches == 3
    assert run.errors == []
    assert run.cutoff == CUTOFF
    lines = DeletionLog.objects.filter(run=run).order_by("pk")
    assert [(line.model, line.count) for line in lines] == [(label, 500), (label, 500), (label, 250)]
    for line in lines:
        assert line.category == "server_logs"
        assert line.customer_id is None and line.record_ids == []
        assert line.rule == "created+6m"
    assert keys_in(s3, server_log_bucket) == {*recent, *outside}

    again = purge_run(category="server_logs")
    assert again.counts == {} and again.errors == []
    assert again.batches == 2  # 1,250 recent logs listed in two pages, none of them due


def test_a_log_goes_on_the_day_its_six_months_are_over_and_not_a_day_before(
    s3: S3Client, server_log_bucket: str
) -> None:
    day_before_cutoff = date(2026, 4, 14)
    upload(s3, server_log_bucket, ["logs/14-april-noon.log"], written_at=oslo(day_before_cutoff))
    upload(s3, server_log_bucket, ["logs/14-april-23.59.log"], written_at=oslo(day_before_cutoff, 23, 59))
    # 00:30 in Oslo is still 14 April in UTC: the day is counted in Oslo, so this log is kept.
    upload(s3, server_log_bucket, ["logs/15-april-00.30.log"], written_at=oslo(CUTOFF, 0, 30))
    upload(s3, server_log_bucket, ["logs/15-april-noon.log"], written_at=oslo(CUTOFF))

    with time_machine.travel(oslo(date(2026, 10, 14), 3), tick=False):
        day_before = purge_run(category="server_logs")
    assert day_before.counts == {}
    assert len(keys_in(s3, server_log_bucket)) == 4

    run = purge_run(category="server_logs")
    assert run.counts == {f"s3:{server_log_bucket}/logs/": 2}
    assert keys_in(s3, server_log_bucket) == {"logs/15-april-00.30.log", "logs/15-april-noon.log"}


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(s3: S3Client, server_log_bucket: str) -> None:
    upload(s3, server_log_bucket, [f"logs/old-{n}.log" for n in range(30)], written_at=LONG_AGO)
    upload(s3, server_log_bucket, [f"logs/new-{n}.log" for n in range(12)], written_at=LAST_MONTH)

    run = purge_run(category="server_logs", dry_run=True)

    label = f"s3:{server_log_bucket}/logs/"
    assert run.dry_run and run.status == PurgeRun.Status.FINISHED
    assert run.counts == {label: 30}
    assert len(keys_in(s3, server_log_bucket)) == 42
    assert not DeletionLog.objects.filter(run=run).exists()
    assert lifecycle_rules(s3, server_log_bucket) == []  # a dry run writes nothing, not even the rule
    [line] = purge_preview(category="server_logs")
    assert (line.model, line.count) == (label, 30)
    assert "months" in line.reason


def test_a_log_s3_refuses_to_delete_is_retried_then_reported_and_the_rest_goes(
    s3: S3Client, server_log_bucket: str, waits: list[float]
) -> None:
    held = "logs/held/incident-4711.log"
    upload(s3, server_log_bucket, [held, *(f"logs/web-{n}.log" for n in range(4))], written_at=LONG_AGO)
    deny_deleting(s3, server_log_bucket, held)

    run = purge_run(category="server_logs")

    label = f"s3:{server_log_bucket}/logs/"
    assert run.status == PurgeRun.Status.FINISHED
    assert waits == [0.2, 0.5]  # three attempts in all
    assert run.counts == {label: 4}
    assert run.errors == [f"{label} {held}: AccessDenied (not deleted after 3 attempts)"]
    assert keys_in(s3, server_log_bucket) == {held}
    assert [line.count for line in DeletionLog.objects.filter(run=run)] == [4]


def test_a_log_that_fails_once_is_deleted_on_the_retry(
    s3: S3Client, server_log_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3, server_log_bucket, [f"logs/web-{n}.log" for n in range(5)], written_at=LONG_AGO)
    deny_deleting(s3, server_log_bucket, "logs/web-3.log")
    waited: list[float] = []

    def refusal_lifted(self: ServerLogPurge, *, seconds: float) -> None:
        waited.append(seconds)
        s3.delete_bucket_policy(Bucket=server_log_bucket)

    monkeypatch.setattr(ServerLogPurge, "wait_before_retry", refusal_lifted)

    run = purge_run(category="server_logs")

    assert waited == [0.2]
    assert run.counts == {f"s3:{server_log_bucket}/logs/": 5}
    assert run.errors == []
    assert keys_in(s3, server_log_bucket) == set()


def test_many_refused_logs_are_reported_in_a_few_lines(
    s3: S3Client, server_log_bucket: str, waits: list[float]
) -> None:
    held = [f"logs/held/{n:02d}.log" for n in range(MAX_REPORTED_KEYS + 5)]
    upload(s3, server_log_bucket, held, written_at=LONG_AGO)
    deny_deleting(s3, server_log_bucket, "logs/held/*")

    run = purge_run(category="server_logs")

    label = f"s3:{server_log_bucket}/logs/"
    assert run.counts == {}
    assert len(run.errors) == MAX_REPORTED_KEYS + 1
    assert run.errors[0] == f"{label} logs/held/00.log: AccessDenied (not deleted after 3 attempts)"
    assert run.errors[-1] == f"{label}: 5 more keys not deleted: AccessDenied"
    assert not DeletionLog.objects.filter(run=run).exists()
    assert len(keys_in(s3, server_log_bucket)) == len(held)


# --- The lifecycle rule ------------------------------------------------------------------------


def test_a_run_gives_the_bucket_its_lifecycle_rule(s3: S3Client, server_log_bucket: str) -> None:
    assert not server_logs.server_log_lifecycle_status().present

    purge_run(category="server_logs")

    assert lifecycle_rules(s3, server_log_bucket) == [our_rule(days=185)]
    status = server_logs.server_log_lifecycle_status()
    assert status.present and status.correct and status.ok
    assert "185" in status.describe()


def test_a_correct_rule_is_left_alone(s3: S3Client, server_log_bucket: str, s3_calls: list[str]) -> None:
    others = {
        "ID": "tmp-uploads",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 3},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=server_log_bucket,
        LifecycleConfiguration={"Rules": [others, our_rule()]},  # type: ignore[list-item]
    )

    assert server_logs.ensure_server_log_lifecycle() == LifecycleChange.UNCHANGED
    purge_run(category="server_logs")

    assert "GetBucketLifecycleConfiguration" in s3_calls
    assert "PutBucketLifecycleConfiguration" not in s3_calls
    assert lifecycle_rules(s3, server_log_bucket) == [others, our_rule()]


def test_a_wrong_rule_is_corrected_and_the_other_rules_are_kept(
    s3: S3Client, server_log_bucket: str, s3_calls: list[str]
) -> None:
    tmp_rule = {
        "ID": "tmp-uploads",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 3},
    }
    tagged = {
        "ID": "abandoned-uploads",
        "Filter": {"And": {"Prefix": "uploads/", "Tags": [{"Key": "state", "Value": "abandoned"}]}},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    }
    # Ours as someone left it: 180 days, which can end before six calendar months have.
    s3.put_bucket_lifecycle_configuration(
        Bucket=server_log_bucket,
        LifecycleConfiguration={"Rules": [tmp_rule, our_rule(days=180), tagged]},  # type: ignore[list-item]
    )
    assert not server_logs.server_log_lifecycle_status().correct

    run = purge_run(category="server_logs")

    assert run.errors == []
    assert s3_calls.count("PutBucketLifecycleConfiguration") == 1
    assert lifecycle_rules(s3, server_log_bucket) == [tmp_rule, our_rule(days=185), tagged]
    assert server_logs.server_log_lifecycle_status().ok


def test_a_rule_for_another_prefix_is_corrected_too(s3: S3Client, server_log_bucket: str) -> None:
    s3.put_bucket_lifecycle_configuration(
        Bucket=server_log_bucket,
        LifecycleConfiguration={"Rules": [our_rule(prefix="old-logs/")]},  # type: ignore[list-item]
    )
    assert server_logs.ensure_server_log_lifecycle() == LifecycleChange.CORRECTED
    assert lifecycle_rules(s3, server_log_bucket) == [our_rule()]


def test_the_status_names_other_rules_that_would_delete_logs_early(
    s3: S3Client, server_log_bucket: str
) -> None:
    legacy = {"ID": "legacy-180", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 180}}
    unrelated = {
        "ID": "tmp-uploads",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 3},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=server_log_bucket,
        LifecycleConfiguration={"Rules": [legacy, unrelated, our_rule()]},  # type: ignore[list-item]
    )

    status = server_logs.server_log_lifecycle_status()

    assert status.correct and not status.ok
    assert status.early_rule_ids == ("legacy-180",)
    assert "legacy-180" in status.describe()
    # The portal reports someone else's rule; it does not remove it.
    assert server_logs.ensure_server_log_lifecycle() == LifecycleChange.UNCHANGED
    assert lifecycle_rules(s3, server_log_bucket) == [legacy, unrelated, our_rule()]


def test_without_a_bucket_there_is_no_rule_to_keep(settings: Any) -> None:
    settings.SERVER_LOGS_BUCKET = ""
    status = server_logs.server_log_lifecycle_status()
    assert not status.configured and status.ok
    assert "local log directory" in status.describe()
    assert server_logs.ensure_server_log_lifecycle() == LifecycleChange.NOT_CONFIGURED


# --- A local directory (the embedded default) --------------------------------------------------


@pytest.fixture
def log_dir(tmp_path: Path, settings: Any) -> Path:
    settings.SERVER_LOGS_BUCKET = ""
    settings.SERVER_LOGS_DIR = tmp_path / "server-logs"
    return settings.SERVER_LOGS_DIR


def write_log(directory: Path, name: str, *, written_at: datetime) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(LOG_LINE)
    os.utime(path, (written_at.timestamp(), written_at.timestamp()))
    return path


def test_without_a_bucket_the_local_log_directory_is_swept_with_the_same_boundary(log_dir: Path) -> None:
    long_ago = write_log(log_dir, "2026/03/access.log", written_at=LONG_AGO)
    last_of_14_april = write_log(log_dir, "2026/04/access-14.log", written_at=oslo(date(2026, 4, 14), 23, 59))
    kept = [
        write_log(log_dir, "2026/04/access-15.log", written_at=oslo(CUTOFF, 0, 30)),
        write_log(log_dir, "2026/09/access.log", written_at=LAST_MONTH),
    ]
    label = f"file:{log_dir}"

    with time_machine.travel(oslo(date(2026, 10, 14), 3), tick=False):
        assert purge_run(category="server_logs").counts == {label: 1}
    assert not long_ago.exists()
    assert last_of_14_april.exists()

    dry = purge_run(category="server_logs", dry_run=True)
    assert dry.counts == {label: 1}
    assert last_of_14_april.exists()

    run = purge_run(category="server_logs")
    assert run.counts == {label: 1} and run.errors == []
    assert [(line.model, line.count) for line in DeletionLog.objects.filter(run=run)] == [(label, 1)]
    assert not last_of_14_april.exists()
    assert all(path.exists() for path in kept)


def test_the_local_directory_is_paged_like_a_bucket(log_dir: Path) -> None:
    for n in range(25):
        write_log(log_dir, f"access-{n:02d}.log", written_at=LONG_AGO if n % 2 else LAST_MONTH)

    run = purge_run(category="server_logs", batch_size=10)

    assert run.batches == 3
    assert run.counts == {f"file:{log_dir}": 12}
    assert [line.count for line in DeletionLog.objects.filter(run=run).order_by("pk")] == [5, 5, 2]
    assert len(list(log_dir.iterdir())) == 13


def test_with_no_log_directory_there_is_nothing_to_do(log_dir: Path) -> None:
    assert not log_dir.exists()
    run = purge_run(category="server_logs")
    assert run.status == PurgeRun.Status.FINISHED
    assert run.counts == {} and run.errors == []


def test_a_long_place_name_still_fits_the_deletion_log() -> None:
    label = fit_label("file:/" + "very-long-folder/" * 10 + "server-logs")
    assert len(label) == 100
    assert label.startswith("file:…") and label.endswith("/server-logs")
