"""CronJob schedules (fields, descriptors, zones, DST) and the controller's scheduling decisions.

The decisions run against a recording stand-in for the API client (below the unit under
test) and an injected clock, so minutes of schedule cost nothing.
"""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.cronjob import (
    SCHEDULED_TIMESTAMP,
    CronJobController,
    Schedule,
    ScheduleError,
    go_rfc3339,
    job_name,
    missed_times,
)

Obj = dict[str, Any]


def zone_or_skip(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip(f"no time zone database entry for {name}")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def times(spec: str, start: str, count: int, zone: Any = UTC) -> list[str]:
    schedule = Schedule.parse(spec)
    found, moment = [], at(start)
    for _ in range(count):
        moment = schedule.next(moment, zone)
        found.append(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
    return found


def test_every_minute_steps_and_ranges() -> None:
    assert times("*/1 * * * *", "2026-01-01T00:00:30+00:00", 2) == ["2026-01-01T00:01", "2026-01-01T00:02"]
    assert times("*/15 * * * *", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-01T00:15",
        "2026-01-01T00:30",
        "2026-01-01T00:45",
    ]
    assert times("5-7 2 * * *", "2026-01-01T02:05:00+00:00", 3) == [
        "2026-01-01T02:06",
        "2026-01-01T02:07",
        "2026-01-02T02:05",
    ]
    assert times("0 9 * * mon-fri", "2026-01-02T10:00:00+00:00", 2) == [
        "2026-01-05T09:00",
        "2026-01-06T09:00",
    ]
    assert times("0 0 29 feb *", "2026-01-01T00:00:00+00:00", 1) == ["2028-02-29T00:00"]


def test_descriptors() -> None:
    assert times("@hourly", "2026-03-01T10:20:00+00:00", 1) == ["2026-03-01T11:00"]
    assert times("@daily", "2026-03-01T10:20:00+00:00", 1) == ["2026-03-02T00:00"]
    assert times("@weekly", "2026-03-04T10:20:00+00:00", 1) == ["2026-03-08T00:00"]  # a Sunday
    assert times("@monthly", "2026-03-04T10:20:00+00:00", 1) == ["2026-04-01T00:00"]
    assert times("@yearly", "2026-03-04T10:20:00+00:00", 1) == ["2027-01-01T00:00"]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # robfig/cron (as Vixie cron): both restricted means either matches; a star means both must.
    assert times("0 0 13 * fri", "2026-02-01T00:00:00+00:00", 3) == [
        "2026-02-06T00:00",
        "2026-02-13T00:00",
        "2026-02-20T00:00",
    ]
    assert times("0 0 * * fri", "2026-02-01T00:00:00+00:00", 1) == ["2026-02-06T00:00"]


def test_bad_schedules_are_refused() -> None:
    for spec in ("* * * *", "61 * * * *", "* * * * 7", "@often", "*/0 * * * *", "a * * * *"):
        with pytest.raises(ScheduleError):
            Schedule.parse(spec)


def test_the_zone_prefix_and_the_caller_zone() -> None:
    berlin = zone_or_skip("Europe/Berlin")
    prefixed = Schedule.parse("CRON_TZ=Europe/Berlin 0 9 * * *")
    assert prefixed.zone == berlin
    assert Schedule.parse("TZ=UTC 0 9 * * *").zone == UTC
    # The prefix wins over the zone the caller passes (the CronJob's local default).
    nine = prefixed.next(at("2026-06-01T00:00:00+00:00"), UTC)
    assert nine.astimezone(UTC).hour == 7  # CEST is UTC+2
    assert times("0 9 * * *", "2026-01-10T00:00:00+00:00", 1, berlin) == ["2026-01-10T08:00"]  # CET
    with pytest.raises(ScheduleError, match="unknown time zone"):
        Schedule.parse("TZ=Mars/Olympus 0 9 * * *")


def test_daylight_saving_jumps() -> None:
    new_york = zone_or_skip("America/New_York")
    # 2026-03-08: 02:00 does not exist there; the job at 02:30 is skipped that day.
    assert times("30 2 * * *", "2026-03-07T00:00:00+00:00", 2, new_york) == [
        "2026-03-07T07:30",
        "2026-03-09T06:30",
    ]
    # Hourly across the jump: 01:00 EST then 03:00 EDT, one hour apart in real time.
    assert times("0 * * * *", "2026-03-08T05:30:00+00:00", 2, new_york) == [
        "2026-03-08T06:00",
        "2026-03-08T07:00",
    ]


def test_missed_times_are_counted_and_the_latest_is_found() -> None:
    every = Schedule.parse("* * * * *")
    start = at("2026-01-01T00:00:00+00:00")
    last, count = missed_times(every, UTC, start, start + timedelta(minutes=5, seconds=10))
    assert (last, count) == (start + timedelta(minutes=5), 5)
    assert missed_times(every, UTC, start, start + timedelta(seconds=30)) == (None, 0)
    last, count = missed_times(every, UTC, start, start + timedelta(days=3, seconds=1))
    assert last == start + timedelta(days=3)
    assert count > 100


def test_job_names_and_the_scheduled_timestamp() -> None:
    scheduled = at("2026-01-01T00:01:00+00:00")
    assert job_name("hello", scheduled) == f"hello-{int(scheduled.timestamp()) // 60}"
    assert go_rfc3339(scheduled) == "2026-01-01T00:01:00Z"
    assert go_rfc3339(scheduled.astimezone(zone_or_skip("Asia/Kolkata"))) == "2026-01-01T05:31:00+05:30"


# -- the controller's decisions --------------------------------------------------------------------


class RecordingApi:
    """Answers what the controller asks and keeps what it wrote."""

    def __init__(self) -> None:
        self.created: list[tuple[str, Obj]] = []
        self.deleted: list[tuple[str, Obj | None]] = []
        self.updated: list[tuple[str, Obj]] = []

    async def create(self, path: str, body: Obj) -> Obj:
        self.created.append((path, body))
        meta = {**body["metadata"], "uid": f"uid-{len(self.created)}", "resourceVersion": "7"}
        return {**body, "metadata": meta}

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        self.deleted.append((path, body))
        return {}

    async def update(self, path: str, body: Obj) -> Obj:
        self.updated.append((path, body))
        return body

    async def get(self, path: str) -> Obj:
        raise ApiStatusError(404, "NotFound", path)

    def jobs(self) -> list[Obj]:
        return [b for p, b in self.created if p.endswith("/jobs")]

    def reasons(self) -> list[str]:
        return [b["reason"] for p, b in self.created if p.endswith("/events")]


def cronjob(**spec: Any) -> Obj:
    status = spec.pop("status", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "tick",
            "namespace": "default",
            "uid": "cj-uid",
            "creationTimestamp": "2026-01-01T00:00:30Z",
        },
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Allow",
            "timeZone": "UTC",
            "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {}}},
            **spec,
        },
        "status": status,
    }


async def decide(obj: Obj, now: str) -> tuple[RecordingApi, float | None]:
    api = RecordingApi()
    controller = CronJobController(RestClient.__new__(RestClient))
    controller.api = controller.events.api = api  # type: ignore[assignment]
    controller.clock = lambda: at(now)
    delay = await controller._schedule(("default", "tick"), obj)
    await asyncio.sleep(0)  # let the event writes run
    await asyncio.sleep(0)
    return api, delay


async def test_the_latest_missed_time_gets_one_job() -> None:
    obj = cronjob()
    api, delay = await decide(obj, "2026-01-01T00:05:20+00:00")
    [job] = api.jobs()
    scheduled = at("2026-01-01T00:05:00+00:00")
    assert job["metadata"]["name"] == job_name("tick", scheduled)
    assert job["metadata"]["annotations"] == {SCHEDULED_TIMESTAMP: "2026-01-01T00:05:00Z"}
    assert job["metadata"]["labels"] == {"app": "tick"}
    assert job["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    assert obj["status"]["lastScheduleTime"] == "2026-01-01T00:05:00Z"
    assert [a["name"] for a in obj["status"]["active"]] == [job["metadata"]["name"]]
    assert delay is not None and 40 < delay < 41
    assert "SuccessfulCreate" in api.reasons()


async def test_nothing_is_due_before_the_first_scheduled_time() -> None:
    api, delay = await decide(cronjob(), "2026-01-01T00:00:50+00:00")
    assert api.jobs() == []
    assert delay is not None and 10 < delay < 11


async def test_a_time_past_the_starting_deadline_is_missed() -> None:
    obj = cronjob(schedule="0 * * * *", startingDeadlineSeconds=10)
    api, _ = await decide(obj, "2026-01-01T01:00:30+00:00")
    assert api.jobs() == []
    assert api.reasons() == []  # the deadline hides the 01:00 time: none is due
    api, _ = await decide(
        cronjob(schedule="0 * * * *", startingDeadlineSeconds=60), "2026-01-01T01:00:30+00:00"
    )
    assert len(api.jobs()) == 1


async def test_forbid_skips_while_a_job_runs_and_replace_deletes_it() -> None:
    running = {"active": [{"kind": "Job", "name": "tick-1", "namespace": "default", "uid": "old"}]}
    api, _ = await decide(
        cronjob(concurrencyPolicy="Forbid", status=dict(running)), "2026-01-01T00:02:00+00:00"
    )
    assert api.jobs() == []
    assert api.reasons() == ["JobAlreadyActive"]
    obj = cronjob(concurrencyPolicy="Replace", status=dict(running))
    api, _ = await decide(obj, "2026-01-01T00:02:00+00:00")
    assert [p for p, _ in api.deleted] == ["/apis/batch/v1/namespaces/default/jobs/tick-1"]
    assert api.deleted[0][1] == {"propagationPolicy": "Background"}
    assert len(api.jobs()) == 1
    assert [a["uid"] for a in obj["status"]["active"]] != ["old"]


async def test_suspended_and_already_scheduled_cronjobs_create_nothing() -> None:
    api, delay = await decide(cronjob(suspend=True), "2026-01-01T00:05:00+00:00")
    assert (api.jobs(), delay) == ([], None)
    done = cronjob(status={"lastScheduleTime": "2026-01-01T00:05:00Z"})
    api, _ = await decide(done, "2026-01-01T00:05:30+00:00")
    assert api.jobs() == []


async def test_an_unknown_time_zone_is_reported() -> None:
    api, delay = await decide(cronjob(timeZone="Mars/Olympus"), "2026-01-01T00:05:00+00:00")
    assert (api.jobs(), delay) == ([], None)
    assert api.reasons() == ["UnknownTimeZone"]


async def test_a_time_zone_moves_the_schedule() -> None:
    zone_or_skip("Asia/Tokyo")
    obj = cronjob(
        schedule="0 9 * * *", timeZone="Asia/Tokyo", status={"lastScheduleTime": "2026-01-01T00:00:00Z"}
    )
    api, _ = await decide(obj, "2026-01-02T00:00:10+00:00")  # 09:00:10 in Tokyo
    [job] = api.jobs()
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2026-01-02T09:00:00+09:00"
    assert obj["status"]["lastScheduleTime"] == "2026-01-02T00:00:00Z"


async def test_the_oldest_finished_jobs_beyond_the_limits_are_deleted() -> None:
    def finished(name: str, started: str, kind: str) -> Obj:
        return {
            "metadata": {"name": name, "namespace": "default"},
            "status": {"startTime": started, "conditions": [{"type": kind, "status": "True"}]},
        }

    jobs = [
        finished("tick-3", "2026-01-01T00:03:00Z", "Complete"),
        finished("tick-1", "2026-01-01T00:01:00Z", "Complete"),
        finished("tick-2", "2026-01-01T00:02:00Z", "Complete"),
        finished("tick-4", "2026-01-01T00:04:00Z", "Failed"),
        {"metadata": {"name": "tick-5", "namespace": "default"}, "status": {"active": 1}},
    ]
    api = RecordingApi()
    controller = CronJobController(RestClient.__new__(RestClient))
    controller.api = controller.events.api = api  # type: ignore[assignment]
    await controller._clean_history(cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1), jobs)
    await asyncio.sleep(0)
    assert [p.rsplit("/", 1)[1] for p, _ in api.deleted] == ["tick-1", "tick-2"]
    assert api.reasons() == ["SuccessfulDelete", "SuccessfulDelete"]
