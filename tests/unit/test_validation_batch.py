"""Validation of batch/v1: Jobs (with their generated selectors), CronJobs, schedules and time zones.

Schedules are parsed as robfig/cron/v3's ``ParseStandard`` parses them, and its error messages are
kube-apiserver's messages, so they are checked verbatim. Hypothesis checks that every well-formed
five-field schedule it can build is accepted.
"""

# ruff: noqa: E501  (tables of upstream's messages: one expected cause per line reads and greps best)
from __future__ import annotations

import copy
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given

from k3py.api.validation import Cause, cron_error
from tests.unit.api_cases import check, invalid, required

Obj = dict[str, Any]
UID = "0d9c8b7a-6543-4210-8fed-cba987654321"


def unsupported(field: str, shown: str, *supported: str) -> Cause:
    values = ", ".join(f'"{s}"' for s in supported)
    return Cause("FieldValueNotSupported", f"Unsupported value: {shown}: supported values: {values}", field)


def job(**spec: Any) -> Obj:
    body: Obj = {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "pi",
                        "image": "perl:5.34.0",
                        "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                    }
                ],
                "restartPolicy": "Never",
            }
        },
        "backoffLimit": 4,
        **spec,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": UID},
        "spec": body,
    }


def test_the_pi_job_passes() -> None:
    assert check("jobs.batch", job()) == []


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        (
            {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
            [required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')],
        ),
        (
            {"template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Sometimes"}}},
            [
                unsupported("spec.template.spec.restartPolicy", '"Sometimes"', "Always", "OnFailure", "Never"),
                unsupported("spec.template.spec.restartPolicy", '"Sometimes"', "OnFailure", "Never"),
            ],
        ),
        ({"parallelism": -1}, [invalid("spec.parallelism", "-1", "must be greater than or equal to 0")]),
        ({"backoffLimit": -1}, [invalid("spec.backoffLimit", "-1", "must be greater than or equal to 0")]),
        ({"completionMode": "Ordered"}, [unsupported("spec.completionMode", '"Ordered"', "NonIndexed", "Indexed")]),
        (
            {"completionMode": "Indexed", "completions": None, "parallelism": 2},
            [required("spec.completions", "when completion mode is Indexed")],
        ),
        ({"backoffLimitPerIndex": 1}, [invalid("spec.backoffLimitPerIndex", "1", "requires indexed completion mode")]),
        (
            {"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]},
             "template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "OnFailure"}}},
            [invalid("spec.template.spec.restartPolicy", '"OnFailure"', 'only "Never" is supported when podFailurePolicy is specified')],
        ),
    ],
    ids=["restart-always", "restart-unknown", "parallelism", "backoff", "mode", "indexed-completions", "per-index", "failure-policy"],
)  # fmt: skip
def test_job_specs(spec: Obj, causes: list[Cause]) -> None:
    assert check("jobs.batch", job(**spec)) == causes


def test_indexed_jobs_need_room_for_hostnames() -> None:
    long_name = job(completionMode="Indexed", completions=100, parallelism=2)
    long_name["metadata"]["name"] = "x" * 61
    assert check("jobs.batch", long_name) == [
        invalid(
            "metadata.name",
            f'"{"x" * 61}"',
            f"will not able to create pod with invalid DNS label: {'x' * 61}-99",
        )
    ]


def test_generated_selectors_must_not_be_tampered_with() -> None:
    wrong = job()
    wrong["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "someone-else"}}
    got = check("jobs.batch", wrong)
    assert got[0] == invalid(
        "spec.template.metadata.labels[controller-uid]",
        f'map[string]string{{"batch.kubernetes.io/controller-uid":"{UID}", "batch.kubernetes.io/job-name":"pi", '
        '"controller-uid":"someone-else", "job-name":"pi"}',
        f"must be '{UID}'",
    )
    assert (
        invalid(
            "spec.selector",
            f'v1.LabelSelector{{MatchLabels:map[string]string{{"batch.kubernetes.io/controller-uid":"{UID}"}}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
            "`selector` not auto-generated",
        )
        not in got
    )


def test_manual_selectors() -> None:
    manual = job(manualSelector=True, selector={"matchLabels": {"run": "pi"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"run": "pi"}}
    assert check("jobs.batch", manual) == []
    manual["spec"]["template"]["metadata"] = {"labels": {"run": "e"}}
    assert check("jobs.batch", manual) == [
        invalid(
            "spec.template.metadata.labels",
            'map[string]string{"run":"e"}',
            "`selector` does not match template `labels`",
        )
    ]


def test_job_updates() -> None:
    stored = job()
    suspended = job(suspend=True)
    assert check("jobs.batch", suspended, stored) == []
    more = job(completions=3)
    assert check("jobs.batch", more, stored) == [invalid("spec.completions", "3", "field is immutable")]
    retemplated = job()
    retemplated["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert check("jobs.batch", retemplated, stored) == [
        invalid("spec.template", "core.PodTemplateSpec{...}", "field is immutable")
    ]


def test_suspended_jobs_that_never_started_may_move() -> None:
    stored = job(suspend=True)
    moved = job(suspend=True)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "batch"}
    moved["spec"]["template"]["spec"]["tolerations"] = [{"key": "batch", "operator": "Exists"}]
    assert check("jobs.batch", moved, stored) == []
    started = copy.deepcopy(stored)
    started["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    assert check("jobs.batch", moved, started)[0].field == "spec.template"


def test_indexed_jobs_scale_completions_with_parallelism() -> None:
    stored = job(completionMode="Indexed", completions=3, parallelism=3)
    assert check("jobs.batch", job(completionMode="Indexed", completions=5, parallelism=5), stored) == []
    assert check("jobs.batch", job(completionMode="Indexed", completions=5, parallelism=3), stored) == [
        invalid("spec.completions", "5", "can only be modified in tandem with spec.parallelism")
    ]


# -- CronJobs ------------------------------------------------------------------------------------


def cronjob(schedule: str = "*/5 * * * *", **spec: Any) -> Obj:
    body: Obj = {
        "schedule": schedule,
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "hello", "image": "busybox:1.28", "command": ["/bin/sh", "-c", "date"]}
                        ],
                        "restartPolicy": "OnFailure",
                    }
                }
            }
        },
        **spec,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": body,
    }


def test_the_hello_cronjob_passes() -> None:
    assert check("cronjobs.batch", cronjob("* * * * *")) == []
    assert check("cronjobs.batch", cronjob("@hourly", timeZone="Europe/Berlin")) == []


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        ({"schedule": ""}, [required("spec.schedule")]),
        (
            {"schedule": "* * *"},
            [invalid("spec.schedule", '"* * *"', "expected exactly 5 fields, found 3: [* * *]")],
        ),
        (
            {"schedule": "TZ=UTC 0 * * * *"},
            [invalid("spec.schedule", '"TZ=UTC 0 * * * *"', "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")],
        ),
        (
            {"timeZone": "Mars/Olympus_Mons"},
            [invalid("spec.timeZone", '"Mars/Olympus_Mons"', "unknown time zone Mars/Olympus_Mons")],
        ),
        ({"timeZone": ""}, [invalid("spec.timeZone", '""', "timeZone must be nil or non-empty string")]),
        (
            {"timeZone": "Local"},
            [invalid("spec.timeZone", '"Local"', "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")],
        ),
        ({"timeZone": "../etc/passwd"}, [invalid("spec.timeZone", '"../etc/passwd"', "unknown time zone ../etc/passwd")]),
        ({"concurrencyPolicy": "Sometimes"}, [unsupported("spec.concurrencyPolicy", '"Sometimes"', "Allow", "Forbid", "Replace")]),
        ({"startingDeadlineSeconds": -5}, [invalid("spec.startingDeadlineSeconds", "-5", "must be greater than or equal to 0")]),
        ({"successfulJobsHistoryLimit": -1}, [invalid("spec.successfulJobsHistoryLimit", "-1", "must be greater than or equal to 0")]),
    ],
    ids=["required", "fields", "tz-prefix", "unknown-zone", "empty-zone", "local", "zone-path", "concurrency", "deadline", "history"],
)  # fmt: skip
def test_cronjob_specs(spec: Obj, causes: list[Cause]) -> None:
    schedule = spec.pop("schedule", "*/5 * * * *")
    assert check("cronjobs.batch", cronjob(schedule, **spec)) == causes


def test_cronjob_job_templates() -> None:
    manual = cronjob()
    manual["spec"]["jobTemplate"]["spec"].update(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    assert check("cronjobs.batch", manual) == [
        invalid(
            "spec.jobTemplate.spec.selector",
            'v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}',
            "`selector` will be auto-generated",
        ),
        Cause(
            "FieldValueNotSupported",
            'Unsupported value: true: supported values: "nil", "false"',
            "spec.jobTemplate.spec.manualSelector",
        ),
    ]
    always = cronjob()
    always["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert check("cronjobs.batch", always) == [
        required("spec.jobTemplate.spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')
    ]


def test_cronjob_names_leave_room_for_the_job_suffix() -> None:
    long_name = cronjob()
    long_name["metadata"]["name"] = "n" * 53
    assert check("cronjobs.batch", long_name) == [
        invalid("metadata.name", f'"{"n" * 53}"', "must be no more than 52 characters")
    ]
    assert check("cronjobs.batch", long_name, long_name) == []  # only checked on create


def test_a_stored_tz_schedule_may_stay_but_not_with_a_time_zone() -> None:
    stored = cronjob("CRON_TZ=UTC 0 3 * * *")
    assert check("cronjobs.batch", cronjob("CRON_TZ=UTC 0 4 * * *"), stored) == []
    both = cronjob("CRON_TZ=UTC 0 3 * * *", timeZone="UTC")
    assert check("cronjobs.batch", both, stored) == [
        invalid(
            "spec.schedule",
            '"CRON_TZ=UTC 0 3 * * *"',
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        )
    ]


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("0 0 * * *", None),
        ("*/15 9-17 * * mon-fri", None),
        ("0 0 1,15 jan,JUL ?", None),
        ("5 4 * * sun", None),
        ("@yearly", None),
        ("@annually", None),
        ("@monthly", None),
        ("@weekly", None),
        ("@daily", None),
        ("@midnight", None),
        ("@hourly", None),
        ("@every 1h30m", None),
        ("", "empty spec string"),
        ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/2 * * * *", "too many slashes: */2/2"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("* * * * funday", 'failed to parse int from funday: strconv.Atoi: parsing "funday": invalid syntax'),
        ("@reboot", "unrecognized descriptor: @reboot"),
        ("@every 5x", 'failed to parse duration @every 5x: time: unknown unit "x" in duration "5x"'),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("@every fast", 'failed to parse duration @every fast: time: invalid duration "fast"'),
        ("TZ=Nowhere/City * * * * *", "provided bad location Nowhere/City: unknown time zone Nowhere/City"),
    ],
)
def test_cron_schedules_parse_like_robfig_cron(schedule: str, error: str | None) -> None:
    assert cron_error(schedule) == error


_FIELD_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def cron_field(draw: st.DrawFn, lo: int, hi: int) -> str:
    kind = draw(st.sampled_from(["star", "step", "value", "range", "list"]))
    if kind == "star":
        return "*"
    if kind == "step":
        return f"*/{draw(st.integers(1, hi))}"
    a = draw(st.integers(lo, hi))
    if kind == "value":
        return str(a)
    b = draw(st.integers(a, hi))
    if kind == "range":
        return f"{a}-{b}"
    return f"{a},{b}"


@given(st.tuples(*(cron_field(lo, hi) for lo, hi in _FIELD_BOUNDS)))
def test_well_formed_schedules_are_accepted(fields: tuple[str, ...]) -> None:
    assert cron_error(" ".join(fields)) is None
