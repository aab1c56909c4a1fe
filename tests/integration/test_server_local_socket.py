"""The API server's local socket, which the components inside the server process use instead of
loopback TLS: requests on it act as the user they name and are authorized as that user; the
identity header counts on that socket only; only root can reach the socket."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from k3py.client.rest import (
    LOCAL_IDENTITY_HEADER,
    ApiStatusError,
    Credentials,
    Kubeconfig,
    LocalIdentity,
    RestClient,
)
from k3py.config.model import local_socket
from tests.e2e.cluster import Cluster
from tests.integration.api_support import server

SECRETS = "/api/v1/namespaces/kube-system/secrets"
NAME = "local-socket-test"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": NAME}}


@pytest.fixture
async def local(cluster: Cluster) -> AsyncIterator[Path]:
    yield local_socket(cluster.data_dir)


async def test_a_request_acts_as_the_user_it_names(local: Path) -> None:
    scheduler = RestClient.local_client(LocalIdentity(local, "system:kube-scheduler"))
    admin = RestClient.local_client(LocalIdentity(local, "test-admin", ("system:masters",)))
    async with scheduler, admin:  # two users at once on the one socket
        for _ in range(3):
            nodes = await scheduler.list("/api/v1/nodes")  # the scheduler's role may list nodes
            assert nodes["kind"] == "NodeList"
            with pytest.raises(ApiStatusError) as refused:  # and may not create secrets
                await scheduler.create(SECRETS, SECRET)
            assert refused.value.code == 403
            assert 'User "system:kube-scheduler" cannot create resource "secrets"' in str(refused.value)
            assert (await admin.create(SECRETS, SECRET))["metadata"]["name"] == NAME
            await admin.delete(f"{SECRETS}/{NAME}")


@pytest.mark.parametrize("header", [None, "", "not json", '{"user": "x"}', '{"user": "", "groups": []}'])
async def test_a_request_naming_no_one_is_anonymous(local: Path, header: str | None) -> None:
    headers = {} if header is None else {LOCAL_IDENTITY_HEADER: header}
    connector = aiohttp.UnixConnector(path=str(local))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"http://localhost{SECRETS}", headers=headers) as answer,
    ):
        assert answer.status == 403
        assert "system:anonymous" in (await answer.json())["message"]


async def test_the_identity_header_counts_on_the_local_socket_only(cluster: Cluster) -> None:
    trust = Credentials(ca_pem=Kubeconfig.load(cluster.kubeconfig).credentials.ca_pem)  # no certificate
    masters = LocalIdentity(Path("/unused"), "test-admin", ("system:masters",)).header()
    connector = aiohttp.TCPConnector(ssl=trust.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(cluster.url + SECRETS, headers={LOCAL_IDENTITY_HEADER: masters}) as answer,
    ):
        assert answer.status == 403
        assert "system:anonymous" in (await answer.json())["message"]


async def test_only_its_owner_can_reach_the_socket_which_goes_with_the_server(tmp_path: Path) -> None:
    with server(tmp_path, "--disable-controller-manager", "--disable-scheduler") as cluster:
        path = local_socket(cluster.data_dir)
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists()
