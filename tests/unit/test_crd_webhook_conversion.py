"""A CRD's ``spec.conversion``: the Webhook strategy's defaults and apiextensions-apiserver's
validation messages, on the internal form's paths (``spec.conversion.webhookClientConfig``)."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.crd.definition import default_crd, validate_crd
from k3py.api.crd.model import resources_of
from k3py.api.crd.webhook_conversion import review_version

Obj = dict[str, Any]
SCHEMA = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}


def crd(conversion: Obj | None, **spec: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "uid": "u-1"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": SCHEMA},
                {"name": "v2", "served": True, "storage": False, "schema": SCHEMA},
            ],
            **spec,
        },
        "status": {},
    }
    if conversion is not None:
        obj["spec"]["conversion"] = conversion
    default_crd(obj)
    return obj


def webhook(client: Obj | None = None, versions: Any = ("v1", "v1beta1")) -> Obj:
    stanza: Obj = {}
    if client is not None:
        stanza["clientConfig"] = client
    if versions is not None:
        stanza["conversionReviewVersions"] = list(versions)
    return {"strategy": "Webhook", "webhook": stanza}


def messages(obj: Obj) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate_crd(obj, None)]


URL = {"url": "https://127.0.0.1:8443/convert"}
SERVICE = {"service": {"namespace": "team", "name": "converter", "path": "/crdconvert"}}


def test_a_webhook_by_url_or_by_service_is_valid() -> None:
    assert messages(crd(webhook(URL))) == []
    assert messages(crd(webhook(SERVICE, versions=["v1beta1"]))) == []


def test_a_service_is_defaulted_to_port_443_and_an_explicit_port_is_kept() -> None:
    obj = crd(webhook({"service": {"namespace": "team", "name": "converter"}}))
    assert obj["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    kept = crd(webhook({"service": {"namespace": "team", "name": "converter", "port": 9443}}))
    assert kept["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 9443
    assert crd(None)["spec"]["conversion"] == {"strategy": "None"}


def test_the_webhook_strategy_needs_a_client_config_and_review_versions() -> None:
    assert messages(crd({"strategy": "Webhook"})) == [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
        "spec.conversion.conversionReviewVersions: Required value",
    ]


def test_exactly_one_of_url_and_service() -> None:
    both = {**URL, **SERVICE}
    expected = [
        "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required"
    ]
    assert messages(crd(webhook(both))) == expected
    assert messages(crd(webhook({"caBundle": "Zm9v"}))) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (
            "http://127.0.0.1/convert",
            "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
        ),
        (
            "https:///convert",
            'Invalid value: "": host must be specified; desired format: https://host[/path]',
        ),
        ("https://a@host/", 'Invalid value: "a": user information is not permitted in the URL'),
        ("https://host/p#frag", 'Invalid value: "frag": fragments are not permitted in the URL'),
        ("https://host/p?a=b", 'Invalid value: "a=b": query parameters are not permitted in the URL'),
    ],
)
def test_the_url_is_checked_as_upstream(url: str, error: str) -> None:
    assert messages(crd(webhook({"url": url}))) == [f"spec.conversion.webhookClientConfig.url: {error}"]


def test_the_service_reference_is_checked_as_upstream() -> None:
    service = {"service": {"namespace": "", "name": "", "port": 70000, "path": "no-slash//Bad_"}}
    path = "spec.conversion.webhookClientConfig.service"
    found = messages(crd(webhook(service)))
    assert found[:5] == [
        f"{path}.name: Required value: service name is required",
        f"{path}.namespace: Required value: service namespace is required",
        f"{path}.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
        f"{path}.path: Invalid value: \"no-slash//Bad_\": must start with a '/'",
        f'{path}.path: Invalid value: "no-slash//Bad_": segment[1] may not be empty',
    ]
    assert found[5].startswith(
        f'{path}.path: Invalid value: "no-slash//Bad_": segment[2]: a lowercase RFC 1123'
    )


def test_review_versions_must_include_a_known_one_without_duplicates() -> None:
    assert messages(crd(webhook(URL, versions=["v2", "v2", "Bad"])))[:2] == [
        'spec.conversion.conversionReviewVersions[1]: Invalid value: "v2": duplicate version',
        'spec.conversion.conversionReviewVersions[2]: Invalid value: "Bad": a DNS-1035 label must consist '
        "of lower case alphanumeric characters or '-', start with an alphabetic character, and end with "
        "an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')",
    ]
    assert messages(crd(webhook(URL, versions=["v2"]))) == [
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: '
        "must include at least one of v1, v1beta1"
    ]
    assert messages(crd(webhook(URL, versions=[]))) == [
        "spec.conversion.conversionReviewVersions: Required value"
    ]


def test_the_none_strategy_takes_no_webhook_fields() -> None:
    conversion = {"strategy": "None", "webhook": {"clientConfig": URL, "conversionReviewVersions": ["v1"]}}
    assert messages(crd(conversion)) == [
        "spec.conversion.webhookClientConfig: Forbidden: "
        "should not be set when strategy is not set to Webhook",
        "spec.conversion.conversionReviewVersions: Forbidden: "
        "should not be set when strategy is not set to Webhook",
    ]
    assert messages(crd({"strategy": "Sometimes"})) == [
        'spec.conversion.strategy: Unsupported value: "Sometimes": supported values: "None", "Webhook"'
    ]
    assert messages(crd({"strategy": ""})) == ["spec.conversion.strategy: Required value"]


def test_webhook_conversion_refuses_preserve_unknown_fields() -> None:
    found = messages(crd(webhook(URL), preserveUnknownFields=True))
    assert (
        'spec.conversion.strategy: Invalid value: "Webhook": '
        "must be None if spec.preserveUnknownFields is true" in found
    )


def test_the_served_resources_carry_the_webhook_and_the_review_version_is_the_first_known() -> None:
    obj = crd(webhook(URL, versions=["v9", "v1beta1", "v1"]))
    obj["status"]["acceptedNames"] = {"plural": "widgets", "kind": "Widget"}
    for resource in resources_of(obj):
        assert resource.custom is not None and resource.custom.conversion_webhook is not None
        assert resource.storage_version == "example.com/v1"
        assert review_version(resource.custom.conversion_webhook) == "v1beta1"
    plain = crd(None)
    plain["status"]["acceptedNames"] = {"plural": "widgets", "kind": "Widget"}
    assert all(r.custom is not None and r.custom.conversion_webhook is None for r in resources_of(plain))
    assert review_version({"conversionReviewVersions": ["v2"]}) is None
