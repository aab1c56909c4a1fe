"""The CronJob controller: creates a Job at each scheduled time, as kube-controller-manager's does.

A sync of one CronJob (upstream's ``syncCronJob``):

1. reconciles ``status.active`` with the Jobs it owns: a finished Job leaves the list
   (``SawCompletedJob``) and moves ``lastSuccessfulTime``; a running Job it did not list is
   reported (``UnexpectedJob``); a listed Job that is gone is dropped;
2. unless suspended or being deleted, finds the most recent scheduled time since the last one
   (or the CronJob's creation), bounded by ``startingDeadlineSeconds``; one too late is
   reported (``MissSchedule``) and skipped;
3. applies ``concurrencyPolicy`` (Forbid skips, Replace deletes the active Jobs), creates the
   Job ``<cronjob>-<scheduled time in minutes since the epoch>`` and records it;
4. deletes the oldest finished Jobs beyond the history limits, and requeues itself for the
   next scheduled time.

Schedules are robfig/cron's standard ones (five fields or ``@hourly``-style descriptors, an
optional ``TZ=``/``CRON_TZ=`` prefix), read in ``spec.timeZone`` when set, else in the
prefix's zone, else in the server's local zone. The zone database comes from the system or
the ``tzdata`` package; without one, only UTC is known and other zones are reported
(``UnknownTimeZone``) instead of being guessed.
"""

from __future__ import annotations

import copy
import logging
import os
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.job import condition_true
from k3py.controllers.objects import controller_uid, parse_time

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
NEXT_SLACK = 0.1
"""Requeue this long after the next scheduled time, so that time has certainly passed."""


# -- schedules -------------------------------------------------------------------------------------


class ScheduleError(ValueError):
    """A schedule robfig/cron's ``ParseStandard`` would reject."""


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[int, int, dict[str, int] | None], ...] = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def load_zone(name: str) -> tzinfo:
    """The named IANA zone; ``ScheduleError`` when the zone database does not know it."""
    if name == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"unknown time zone {name}") from exc


def local_zone() -> tzinfo:
    """The server's zone, as Go's ``time.Local``: ``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ")
    if name:
        try:
            return load_zone(name.lstrip(":"))
        except ScheduleError:
            return UTC
    try:
        with Path("/etc/localtime").open("rb") as data:
            return zoneinfo.ZoneInfo.from_file(data, key="Local")
    except (OSError, ValueError):
        return UTC


def _field(text: str, low: int, high: int, names: dict[str, int] | None) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for expr in text.split(","):
        range_part, _, step_part = expr.partition("/")
        if range_part in ("*", "?"):
            start, end, star = low, high, star or not step_part
        else:
            first, _, last = range_part.partition("-")
            start = _number(first, names)
            end = _number(last, names) if last else start
            if step_part and not last:
                end = high
        step = _number(step_part, None) if step_part else 1
        if start < low or end > high or start > end or step <= 0:
            raise ScheduleError(f"invalid range {expr!r}: must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def _number(text: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    try:
        return int(text)
    except ValueError:
        raise ScheduleError(f"failed to parse int from {text}") from None


@dataclass(frozen=True)
class Schedule:
    """A parsed cron schedule: the allowed values of each field, and its zone (None: the caller's)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool
    zone: tzinfo | None = None

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        spec = spec.strip()
        zone: tzinfo | None = None
        if spec.startswith(("TZ=", "CRON_TZ=")):
            prefix, _, spec = spec.partition(" ")
            zone = load_zone(prefix.partition("=")[2])
            spec = spec.strip()
        spec = _DESCRIPTORS.get(spec, spec)
        if spec.startswith("@"):
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        fields = spec.split()
        if len(fields) != 5:
            raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
        parsed = [_field(text, *limits) for text, limits in zip(fields, _FIELDS, strict=True)]
        return cls(
            minutes=parsed[0][0],
            hours=parsed[1][0],
            days=parsed[2][0],
            months=parsed[3][0],
            weekdays=parsed[4][0],
            any_day=parsed[2][1],
            any_weekday=parsed[4][1],
            zone=zone,
        )

    def _day_matches(self, moment: datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # robfig: either field a star means both must hold
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next(self, after: datetime, zone: tzinfo) -> datetime:
        """The first scheduled time strictly after ``after``, as wall-clock time in ``zone``."""
        zone = self.zone or zone
        wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = wall.year + 5
        while wall.year <= limit:
            if wall.month not in self.months:
                wall = (wall.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
                continue
            if not self._day_matches(wall):
                wall = (wall + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if wall.hour not in self.hours:
                wall = (wall + timedelta(hours=1)).replace(minute=0)
                continue
            if wall.minute not in self.minutes:
                wall += timedelta(minutes=1)
                continue
            moment = wall.replace(tzinfo=zone)
            # A wall time that a DST jump skips does not exist; go on to the next one.
            if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall and moment > after:
                return moment
            wall += timedelta(minutes=1)
        raise ScheduleError("no scheduled time within five years")


def missed_times(
    schedule: Schedule, zone: tzinfo, earliest: datetime, now: datetime
) -> tuple[datetime | None, int]:
    """The most recent scheduled time in ``(earliest, now]`` and how many there were (capped)."""
    count, last = 0, None
    moment = schedule.next(earliest, zone)
    while moment <= now:
        count += 1
        last = moment
        if count > MAX_MISSED:
            # Too many to walk one by one: find the latest by starting closer to now.
            for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=366)):
                start = max(last, now - window)
                probe, found = schedule.next(start, zone), None
                while probe <= now:
                    found, probe = probe, schedule.next(probe, zone)
                if found is not None:
                    return found, count
            return last, count
        moment = schedule.next(moment, zone)
    return last, count


def job_name(cronjob: str, scheduled: datetime) -> str:
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_rfc3339(moment: datetime) -> str:
    """Go's ``time.RFC3339``: ``Z`` for a zero offset, else ``+hh:mm``."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _finished(job: Obj) -> str | None:
    for kind in ("Complete", "Failed"):
        if condition_true(job, kind) is not None:
            return kind
    return None


# -- the controller --------------------------------------------------------------------------------


class CronJobController(Controller):
    name = "cronjob-controller"
    identity = "cronjob-controller"

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.events = EventRecorder(api, "cronjob-controller", kind="CronJob", api_version="batch/v1")
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.cronjobs = self.informer("/apis/batch/v1/cronjobs")
        self.jobs = self.informer("/apis/batch/v1/jobs")
        self.on(self.cronjobs, lambda old, new: self.enqueue(new or old))
        self.on(self.jobs, self._job_changed)

    def _job_changed(self, old: Obj | None, new: Obj | None) -> None:
        job = new or old
        if job is None:
            return
        meta = job.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") is True and ref.get("kind") == "CronJob":
                self.queue.add((str(meta.get("namespace") or ""), str(ref.get("name") or "")))

    def _jobs_of(self, cronjob: Obj) -> list[Obj]:
        meta = cronjob["metadata"]
        return [
            j
            for j in self.jobs.items()
            if (j.get("metadata") or {}).get("namespace") == meta["namespace"]
            and controller_uid(j) == meta["uid"]
        ]

    async def sync(self, key: Key) -> None:
        namespace, name = key
        found = self.cronjobs.get(namespace, name)
        if found is None:
            return
        cronjob = copy.deepcopy(found)
        status: Obj = cronjob.setdefault("status", {})
        before = copy.deepcopy(status)
        jobs = self._jobs_of(cronjob)
        await self._reconcile_active(cronjob, jobs)
        delay = await self._schedule(key, cronjob)
        if status != before:
            cronjob = await self._write_status(cronjob)
        await self._clean_history(cronjob, self._jobs_of(cronjob))
        if delay is not None:
            self.queue.add_after(key, delay)

    async def _reconcile_active(self, cronjob: Obj, jobs: list[Obj]) -> None:
        status = cronjob["status"]
        active: list[Obj] = list(status.get("active") or [])
        listed = {a.get("uid") for a in active}
        owned = {j["metadata"]["uid"] for j in jobs}
        for job in jobs:
            meta = job["metadata"]
            finished = _finished(job)
            if meta["uid"] not in listed and finished is None:
                self.events.post(
                    cronjob,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {meta['name']}",
                )
            elif meta["uid"] in listed and finished is not None:
                active = [a for a in active if a.get("uid") != meta["uid"]]
                self.events.post(
                    cronjob,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {meta['name']}, condition: {finished}",
                )
            if finished == "Complete":
                done = parse_time((job.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = job["status"]["completionTime"]
        for ref in list(active):
            if ref.get("uid") in owned:
                continue
            path = f"/apis/batch/v1/namespaces/{ref.get('namespace')}/jobs/{ref.get('name')}"
            try:
                fresh = await self.api.get(path)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                fresh = None
            if fresh is None or fresh["metadata"].get("uid") != ref.get("uid"):
                active.remove(ref)
                self.events.post(
                    cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"
                )
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    def _zone(self, cronjob: Obj) -> tzinfo | None:
        name = (cronjob.get("spec") or {}).get("timeZone")
        if name is None:
            return local_zone()
        try:
            return load_zone(str(name))
        except ScheduleError as exc:
            self.events.post(cronjob, "Warning", "UnknownTimeZone", f"invalid timeZone: {name!r}: {exc}")
            return None

    async def _schedule(self, key: Key, cronjob: Obj) -> float | None:
        """Create the Job due now, if any; seconds until the next scheduled time."""
        spec, status, meta = cronjob.get("spec") or {}, cronjob["status"], cronjob["metadata"]
        if meta.get("deletionTimestamp") or spec.get("suspend") is True:
            return None
        zone = self._zone(cronjob)
        if zone is None:
            return None
        try:
            schedule = Schedule.parse(str(spec.get("schedule") or ""))
        except ScheduleError as exc:
            self.events.post(
                cronjob,
                "Warning",
                "UnparseableSchedule",
                f"unparseable schedule: {spec.get('schedule')!r} : {exc}",
            )
            return None
        now = self.clock()
        earliest = (
            _datetime(status.get("lastScheduleTime")) or _datetime(meta.get("creationTimestamp")) or now
        )
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int):
            earliest = max(earliest, now - timedelta(seconds=deadline))
        scheduled, missed = missed_times(schedule, zone, earliest, now) if earliest <= now else (None, 0)
        next_delay = (schedule.next(now, zone) - now).total_seconds() + NEXT_SLACK
        if scheduled is None:
            return next_delay
        if missed > MAX_MISSED:
            self.events.post(
                cronjob,
                "Warning",
                "TooManyMissedTimes",
                f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        if isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now:
            when = scheduled.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            self.events.post(
                cronjob, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {when}"
            )
            return next_delay
        name = job_name(meta["name"], scheduled)
        active: list[Obj] = list(status.get("active") or [])
        if any(a.get("name") == name for a in active) or status.get("lastScheduleTime") == rfc3339(scheduled):
            return next_delay
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.events.post(
                cronjob,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return next_delay
        if policy == "Replace":
            for ref in active:
                await self._delete_job(cronjob, str(ref.get("name")))
            active = []
        job = await self._create_job(cronjob, name, scheduled)
        if job is not None:
            active.append(
                {
                    "kind": "Job",
                    "namespace": job["metadata"]["namespace"],
                    "name": job["metadata"]["name"],
                    "uid": job["metadata"]["uid"],
                    "apiVersion": "batch/v1",
                    "resourceVersion": job["metadata"]["resourceVersion"],
                }
            )
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        status["lastScheduleTime"] = rfc3339(scheduled)
        return next_delay

    async def _create_job(self, cronjob: Obj, name: str, scheduled: datetime) -> Obj | None:
        meta = cronjob["metadata"]
        # Upstream stamps the time in spec.timeZone, or UTC (not the server's zone) without one.
        zone = self._zone(cronjob) if (cronjob.get("spec") or {}).get("timeZone") else UTC
        template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP] = go_rfc3339(scheduled.astimezone(zone or UTC))
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        path = f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs"
        try:
            job = await self.api.create(path, body)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.api.get(f"{path}/{name}")
            if controller_uid(existing) != meta["uid"] or _finished(existing) is not None:
                return None  # already created and perhaps finished: nothing to record as active
            return existing
        self.events.post(cronjob, "Normal", "SuccessfulCreate", f"Created job {name}")
        return job

    async def _delete_job(self, cronjob: Obj, name: str) -> None:
        path = f"/apis/batch/v1/namespaces/{cronjob['metadata']['namespace']}/jobs/{name}"
        try:
            await self.api.delete(path, {"propagationPolicy": "Background"})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            return
        self.events.post(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    async def _clean_history(self, cronjob: Obj, jobs: list[Obj]) -> None:
        spec = cronjob.get("spec") or {}
        for kind, limit_field in (
            ("Complete", "successfulJobsHistoryLimit"),
            ("Failed", "failedJobsHistoryLimit"),
        ):
            limit = spec.get(limit_field)
            if not isinstance(limit, int):
                continue
            done = [j for j in jobs if _finished(j) == kind and not j["metadata"].get("deletionTimestamp")]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or "", j["metadata"]["name"]))
            for job in done[: max(0, len(done) - limit)]:
                await self._delete_job(cronjob, job["metadata"]["name"])

    async def _write_status(self, cronjob: Obj) -> Obj:
        meta = cronjob["metadata"]
        path = f"/apis/batch/v1/namespaces/{meta['namespace']}/cronjobs/{meta['name']}/status"
        return await self.api.update(path, cronjob)


def _datetime(value: object) -> datetime | None:
    seconds = parse_time(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
