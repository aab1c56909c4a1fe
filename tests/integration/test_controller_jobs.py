"""The Job, CronJob and TTL-after-finished controllers against a real ``k3py server`` (no agent).

The test plays the kubelet: it moves the pods the Job controller creates to Running, then to
Succeeded or Failed with terminated container statuses and exit codes, through the pods'
``status`` subresource. The controllers under test run in the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.cronjob import CronJobController
from k3py.controllers.job import FAILURE_COUNT_KEY, FINALIZER, INDEX_KEY, JobController
from k3py.controllers.ttl import TTLAfterFinishedController
from tests.e2e.cluster import Cluster
from tests.integration.api_support import running, server, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
CRONJOBS = "/apis/batch/v1/namespaces/default/cronjobs"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # the test runs the components under test
    with server(tmp_path, "--disable-controller-manager") as started:
        yield started


@pytest.fixture
async def jobs(api: RestClient) -> AsyncIterator[JobController]:
    controller = JobController(api)
    controller.pod_backoff = 0.2
    async with running(controller):
        yield controller


def job_body(name: str, **spec: Any) -> Obj:
    template = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
        }
    }
    return {"metadata": {"name": name}, "spec": {"template": template, **spec}}


async def pods_of(api: RestClient, job: str) -> list[Obj]:
    listed = await api.list(PODS, label_selector=f"batch.kubernetes.io/job-name={job}")
    return list(listed["items"])


async def finish(api: RestClient, pod: Obj, exit_code: int) -> None:
    """The kubelet's part: the container ran and exited with ``exit_code``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "startTime": now,
        "containerStatuses": [
            {
                "name": "main",
                "image": "busybox",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {**terminated, "startedAt": now, "finishedAt": now}},
            }
        ],
    }
    name = pod["metadata"]["name"]
    await api.patch(f"{PODS}/{name}/status", {"status": status})


async def live_pods(api: RestClient, job: str, count: int) -> list[Obj]:
    """Wait for ``count`` pods of ``job`` that have not finished."""
    found: list[Obj] = []

    async def enough() -> bool:
        nonlocal found
        found = [
            p for p in await pods_of(api, job) if p["status"].get("phase") in (None, "Pending", "Running")
        ]
        return len(found) >= count

    await until(enough)
    return found


async def condition(api: RestClient, job: str, kind: str) -> Obj:
    found: Obj = {}

    async def has() -> bool:
        nonlocal found
        got = await api.get(f"{JOBS}/{job}")
        for cond in got.get("status", {}).get("conditions") or []:
            if cond["type"] == kind and cond["status"] == "True":
                found = got
                return True
        return False

    await until(has)
    return found


def conditions(job: Obj) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in job["status"].get("conditions") or [] if c["status"] == "True"}


async def reasons(api: RestClient, name: str) -> list[str]:
    listed = await api.list("/api/v1/namespaces/default/events", field_selector=f"involvedObject.name={name}")
    return [e["reason"] for e in listed["items"]]


async def test_a_job_runs_its_pods_to_completion(api: RestClient, jobs: JobController) -> None:
    await api.create(JOBS, job_body("pi", completions=3, parallelism=2))
    pods = await live_pods(api, "pi", 2)
    assert len(pods) == 2
    job = await api.get(f"{JOBS}/pi")
    uid = job["metadata"]["uid"]
    pod = pods[0]
    assert pod["metadata"]["generateName"] == "pi-"
    labels = pod["metadata"]["labels"]
    for key, value in (
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", "pi"),
        ("controller-uid", uid),
        ("job-name", "pi"),
    ):
        assert labels[key] == value
    [owner] = pod["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "pi",
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert pod["metadata"]["finalizers"] == [FINALIZER]
    for pod in pods:
        await finish(api, pod, 0)
    [third] = await live_pods(api, "pi", 1)
    await finish(api, third, 0)
    done = await condition(api, "pi", "Complete")
    status = done["status"]
    assert status["succeeded"] == 3
    assert status.get("active", 0) == 0
    assert status["startTime"] and status["completionTime"]
    assert conditions(done) == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}
    assert status["uncountedTerminatedPods"] == {} or not any(status["uncountedTerminatedPods"].values())
    assert all(FINALIZER not in (p["metadata"].get("finalizers") or []) for p in await pods_of(api, "pi"))
    assert len(await pods_of(api, "pi")) == 3
    events = await reasons(api, "pi")
    assert events.count("SuccessfulCreate") == 3
    await until(lambda: has_reason(api, "pi", "Completed"))


async def has_reason(api: RestClient, name: str, reason: str) -> bool:
    return reason in await reasons(api, name)


async def test_an_indexed_job_runs_every_index_once(api: RestClient, jobs: JobController) -> None:
    await api.create(JOBS, job_body("idx", completions=3, parallelism=3, completionMode="Indexed"))
    pods = await live_pods(api, "idx", 3)
    by_index = {p["metadata"]["annotations"][INDEX_KEY]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"][INDEX_KEY] == index
        assert pod["metadata"]["generateName"] == f"idx-{index}-"
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert env[0]["name"] == "JOB_COMPLETION_INDEX"
        assert env[0]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{INDEX_KEY}']"
    await finish(api, by_index["1"], 0)
    await finish(api, by_index["0"], 1)

    async def index_one_done() -> bool:
        status = (await api.get(f"{JOBS}/idx"))["status"]
        return bool(status.get("completedIndexes") == "1")

    await until(index_one_done)
    await until(lambda: replacement_for(api, "idx", "0"))
    for pod in await live_pods(api, "idx", 2):
        await finish(api, pod, 0)
    done = await condition(api, "idx", "Complete")
    assert done["status"]["completedIndexes"] == "0-2"
    assert done["status"]["succeeded"] == 3
    assert done["status"]["failed"] == 1


async def replacement_for(api: RestClient, job: str, index: str) -> bool:
    live = [p for p in await pods_of(api, job) if p["status"].get("phase") in (None, "Pending", "Running")]
    return any(p["metadata"]["annotations"][INDEX_KEY] == index for p in live)


async def test_an_index_that_fails_past_its_own_limit_fails_the_job(
    api: RestClient, jobs: JobController
) -> None:
    spec = {"completions": 2, "parallelism": 2, "completionMode": "Indexed", "backoffLimitPerIndex": 1}
    await api.create(JOBS, job_body("perindex", **spec))
    pods = {p["metadata"]["annotations"][INDEX_KEY]: p for p in await live_pods(api, "perindex", 2)}
    assert pods["0"]["metadata"]["annotations"][FAILURE_COUNT_KEY] == "0"
    await finish(api, pods["0"], 1)
    await finish(api, pods["1"], 0)
    [retry] = await live_pods(api, "perindex", 1)
    assert retry["metadata"]["annotations"][INDEX_KEY] == "0"
    assert retry["metadata"]["annotations"][FAILURE_COUNT_KEY] == "1"
    await finish(api, retry, 1)
    failed = await condition(api, "perindex", "Failed")
    assert conditions(failed)["Failed"] == "FailedIndexes"
    assert failed["status"]["failedIndexes"] == "0"
    assert failed["status"]["completedIndexes"] == "1"
    assert failed["status"]["failed"] == 2


async def test_a_failing_job_stops_at_its_backoff_limit(api: RestClient, jobs: JobController) -> None:
    jobs.pod_backoff = 2.5
    await api.create(JOBS, job_body("fails", backoffLimit=1))
    [first] = await live_pods(api, "fails", 1)
    await finish(api, first, 2)
    await until(lambda: failed_count(api, "fails", 1))
    await asyncio.sleep(1.0)  # within the back-off after the first failure: no new pod yet
    assert [p for p in await pods_of(api, "fails") if p["status"].get("phase") != "Failed"] == []
    [second] = await live_pods(api, "fails", 1)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    await finish(api, second, 2)
    failed = await condition(api, "fails", "Failed")
    assert conditions(failed) == {"FailureTarget": "BackoffLimitExceeded", "Failed": "BackoffLimitExceeded"}
    assert failed["status"]["failed"] == 2
    assert "completionTime" not in failed["status"]
    await asyncio.sleep(0.5)
    assert len(await pods_of(api, "fails")) == 2
    await until(lambda: has_reason(api, "fails", "BackoffLimitExceeded"))


async def test_a_deleted_jobs_pods_lose_the_tracking_finalizer(api: RestClient, jobs: JobController) -> None:
    await api.create(JOBS, job_body("gone", parallelism=2, completions=2))
    pods = await live_pods(api, "gone", 2)
    assert all(p["metadata"]["finalizers"] == [FINALIZER] for p in pods)
    await api.delete(f"{JOBS}/gone", {"propagationPolicy": "Background"})

    async def released() -> bool:
        left = await pods_of(api, "gone")
        return len(left) == 2 and not any(p["metadata"].get("finalizers") for p in left)

    await until(released)


async def failed_count(api: RestClient, job: str, count: int) -> bool:
    return bool((await api.get(f"{JOBS}/{job}"))["status"].get("failed") == count)


async def test_a_pod_failure_policy_fails_the_job_at_once(api: RestClient, jobs: JobController) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    await api.create(JOBS, job_body("fatal", backoffLimit=5, podFailurePolicy=policy))
    [pod] = await live_pods(api, "fatal", 1)
    await finish(api, pod, 42)
    failed = await condition(api, "fatal", "Failed")
    assert failed["status"]["conditions"][-1]["reason"] == "PodFailurePolicy"
    assert (
        "failed with exit code 42 matching FailJob rule at index 0"
        in failed["status"]["conditions"][-1]["message"]
    )


async def test_an_active_deadline_fails_the_job_and_deletes_its_pods(
    api: RestClient, jobs: JobController
) -> None:
    await api.create(JOBS, job_body("slow", activeDeadlineSeconds=1))
    await live_pods(api, "slow", 1)
    failed = await condition(api, "slow", "Failed")
    assert conditions(failed)["Failed"] == "DeadlineExceeded"
    assert await pods_of(api, "slow") == [] or all(
        p["metadata"].get("deletionTimestamp") for p in await pods_of(api, "slow")
    )


async def test_a_suspended_job_has_no_pods_until_resumed(api: RestClient, jobs: JobController) -> None:
    await api.create(JOBS, job_body("later", suspend=True))
    suspended = await condition(api, "later", "Suspended")
    assert "startTime" not in suspended["status"]
    assert await pods_of(api, "later") == []
    await api.patch(f"{JOBS}/later", {"spec": {"suspend": False}})
    [pod] = await live_pods(api, "later", 1)
    await finish(api, pod, 0)
    done = await condition(api, "later", "Complete")
    assert [c["reason"] for c in done["status"]["conditions"] if c["type"] == "Suspended"] == ["JobResumed"]


async def test_a_finished_job_is_deleted_after_its_ttl(api: RestClient, jobs: JobController) -> None:
    async with running(TTLAfterFinishedController(api)):
        await api.create(JOBS, job_body("brief", ttlSecondsAfterFinished=1))
        [pod] = await live_pods(api, "brief", 1)
        await finish(api, pod, 0)
        await condition(api, "brief", "Complete")

        async def deleted() -> bool:
            try:
                job = await api.get(f"{JOBS}/brief")
            except ApiStatusError as exc:
                return exc.code == 404
            return bool(job["metadata"].get("deletionTimestamp"))

        await until(deleted)


async def test_a_cronjob_creates_a_job_on_schedule(api: RestClient, jobs: JobController) -> None:
    cron = {
        "metadata": {"name": "every"},
        "spec": {
            "schedule": "*/1 * * * *",
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"app": "every"}}, "spec": job_body("x")["spec"]},
        },
    }
    created = await api.create(CRONJOBS, cron)
    # Pretend the CronJob has existed for a while so that a scheduled time has passed already.
    controller = CronJobController(api)
    start_clock = datetime.now(UTC)
    controller.clock = lambda: start_clock + timedelta(minutes=1, seconds=5)
    async with running(controller):

        async def has_job() -> bool:
            listed = await api.list(JOBS, label_selector="app=every")
            return len(listed["items"]) == 1

        await until(has_job)
        [job] = (await api.list(JOBS, label_selector="app=every"))["items"]
        scheduled = datetime.fromisoformat(
            job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        )
        assert job["metadata"]["name"] == f"every-{int(scheduled.timestamp()) // 60}"
        assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

        async def active() -> bool:
            status = (await api.get(f"{CRONJOBS}/every")).get("status") or {}
            return [a["name"] for a in status.get("active") or []] == [job["metadata"]["name"]]

        await until(active)
        [pod] = await live_pods(api, job["metadata"]["name"], 1)
        await finish(api, pod, 0)

        async def seen_complete() -> bool:
            status = (await api.get(f"{CRONJOBS}/every")).get("status") or {}
            return not status.get("active") and bool(status.get("lastSuccessfulTime"))

        await until(seen_complete)
        assert "SawCompletedJob" in await reasons(api, "every")
        assert "SuccessfulCreate" in await reasons(api, "every")


async def test_a_job_adopts_matching_orphans_and_releases_pods_it_no_longer_selects(
    api: RestClient, jobs: JobController
) -> None:
    await api.create(JOBS, job_body("adopt", parallelism=2, completions=4))
    pods = await live_pods(api, "adopt", 2)
    job = await api.get(f"{JOBS}/adopt")
    orphan = pods[0]
    path = f"{PODS}/{orphan['metadata']['name']}"
    await api.patch(path, {"metadata": {"ownerReferences": None}}, "merge")

    async def adopted() -> bool:
        refs = (await api.get(path))["metadata"].get("ownerReferences") or []
        return [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [
            ("Job", job["metadata"]["uid"], True)
        ]

    await until(adopted)
    await api.patch(path, {"metadata": {"labels": None}}, "merge")

    async def released() -> bool:
        meta = (await api.get(path))["metadata"]
        return not meta.get("ownerReferences") and FINALIZER not in (meta.get("finalizers") or [])

    await until(released)


async def test_a_job_is_complete_only_once_its_deleted_pods_have_terminated(
    api: RestClient, jobs: JobController
) -> None:
    body = job_body("early", completions=3, parallelism=2, completionMode="Indexed", backoffLimit=6)
    body["spec"]["successPolicy"] = {"rules": [{"succeededCount": 1}]}
    await api.create(JOBS, body)
    pods = await live_pods(api, "early", 2)
    winner, other = sorted(pods, key=lambda p: p["metadata"]["annotations"][INDEX_KEY])
    # Something else holds the other pod, as a kubelet does while its containers stop.
    held = [*other["metadata"].get("finalizers", []), "example.com/hold"]
    await api.patch(f"{PODS}/{other['metadata']['name']}", {"metadata": {"finalizers": held}})
    await finish(api, winner, 0)
    await condition(api, "early", "SuccessCriteriaMet")

    async def other_deleted() -> bool:
        return bool(
            (await api.get(f"{PODS}/{other['metadata']['name']}"))["metadata"].get("deletionTimestamp")
        )

    await until(other_deleted)
    await asyncio.sleep(1.0)  # time enough for the controller to finish the Job, were it allowed to
    job = await api.get(f"{JOBS}/early")
    assert "Complete" not in conditions(job), job["status"]
    assert job["status"]["terminating"] == 1
    await finish(api, await api.get(f"{PODS}/{other['metadata']['name']}"), 137)
    done = await condition(api, "early", "Complete")
    assert done["status"]["terminating"] == 0
    assert conditions(done)["Complete"] == "SuccessPolicy"
    current = await api.get(f"{PODS}/{other['metadata']['name']}")
    kept = [f for f in current["metadata"].get("finalizers", []) if f != "example.com/hold"]
    await api.patch(f"{PODS}/{other['metadata']['name']}", {"metadata": {"finalizers": kept}})
