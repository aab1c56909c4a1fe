"""A CRD's ``spec.conversion``: defaulting and validation of the conversion webhook stanza.

``strategy: None`` serves every version from the same objects with only ``apiVersion``
changed; ``strategy: Webhook`` has the API server send the objects to the CRD's webhook
(``webhook.clientConfig``, a ``url`` or a ``service``) in a ConversionReview of the first of
``webhook.conversionReviewVersions`` it speaks. This module is apiextensions-apiserver's
``ValidateCustomResourceConversion`` on the internal form, whose paths the errors use
(``spec.conversion.webhookClientConfig``, ``spec.conversion.conversionReviewVersions``), and
``SetDefaults_ServiceReference`` (port 443). The call itself belongs to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from k3py.api.validation import (
    Cause,
    dns1035_errors,
    dns_subdomain_errors,
    forbidden,
    go_strings,
    invalid,
    not_supported,
    required,
)

Obj = dict[str, Any]

REVIEW_VERSIONS: Final = ("v1", "v1beta1")
"""The ConversionReview versions the API server speaks, preferred first."""
DEFAULT_PORT: Final = 443
_URL_FORM: Final = "; desired format: https://host[/path]"
_PATH: Final = "spec.conversion"


def default_conversion(conversion: Obj) -> None:
    """A webhook ``service`` without a port is called on 443."""
    webhook = conversion.get("webhook")
    client = webhook.get("clientConfig") if isinstance(webhook, dict) else None
    service = client.get("service") if isinstance(client, dict) else None
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = DEFAULT_PORT


def review_version(webhook: Mapping[str, Any]) -> str | None:
    """The ConversionReview version to send: the first of ``conversionReviewVersions`` spoken."""
    wanted = webhook.get("conversionReviewVersions")
    for version in wanted if isinstance(wanted, list) else ():
        if version in REVIEW_VERSIONS:
            return str(version)
    return None


def validate_conversion(conversion: Obj, *, preserve_unknown_fields: bool) -> list[Cause]:
    strategy = conversion.get("strategy")
    if not strategy:
        return [required(f"{_PATH}.strategy")]
    if strategy not in ("None", "Webhook"):
        return [not_supported(f"{_PATH}.strategy", strategy, ("None", "Webhook"))]
    webhook = conversion.get("webhook")
    webhook = webhook if isinstance(webhook, dict) else {}
    client, versions = webhook.get("clientConfig"), webhook.get("conversionReviewVersions")
    if strategy == "None":
        causes: list[Cause] = []
        if client is not None:
            causes.append(
                forbidden(
                    f"{_PATH}.webhookClientConfig", "should not be set when strategy is not set to Webhook"
                )
            )
        if versions:
            causes.append(
                forbidden(
                    f"{_PATH}.conversionReviewVersions",
                    "should not be set when strategy is not set to Webhook",
                )
            )
        return causes
    causes = []
    if preserve_unknown_fields:
        causes.append(
            invalid(f"{_PATH}.strategy", strategy, "must be None if spec.preserveUnknownFields is true")
        )
    if not isinstance(client, dict):
        causes.append(required(f"{_PATH}.webhookClientConfig", "required when strategy is set to Webhook"))
    else:
        causes += _client_config(client, f"{_PATH}.webhookClientConfig")
    causes += _review_versions(versions, f"{_PATH}.conversionReviewVersions")
    return causes


def _client_config(client: Obj, path: str) -> list[Cause]:
    url, service = client.get("url"), client.get("service")
    if (url is None) == (service is None):
        return [required(path, "exactly one of url or service is required")]
    if url is not None:
        return webhook_url_errors(str(url), f"{path}.url")
    service = service if isinstance(service, dict) else {}
    return webhook_service_errors(service, f"{path}.service")


def webhook_url_errors(url: str, path: str) -> list[Cause]:
    """``ValidateWebhookURL`` with https required."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return [required(path, f"url must be a valid URL: {exc}{_URL_FORM}")]
    causes: list[Cause] = []
    if parts.scheme != "https":
        causes.append(invalid(path, parts.scheme, f"'https' is the only allowed URL scheme{_URL_FORM}"))
    user, _, host = parts.netloc.rpartition("@")
    if not host:
        causes.append(invalid(path, host, f"host must be specified{_URL_FORM}"))
    if "@" in parts.netloc:
        causes.append(invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def webhook_service_errors(service: Obj, path: str) -> list[Cause]:
    """``ValidateWebhookService``: name, namespace, port and path."""
    causes: list[Cause] = []
    if not service.get("name"):
        causes.append(required(f"{path}.name", "service name is required"))
    if not service.get("namespace"):
        causes.append(required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        causes.append(
            invalid(f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive")
        )
    url_path = service.get("path")
    if url_path is None or url_path in ("", "/"):
        return causes
    url_path = str(url_path)
    if url_path == "//":
        return [*causes, invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(invalid(f"{path}.path", url_path, "must start with a '/'"))
    to_check = url_path[1:]
    if to_check.endswith("/"):
        to_check = to_check[:-1]
    for i, step in enumerate(to_check.split("/")):
        if not step:
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for failure in dns_subdomain_errors(step):
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}]: {failure}"))
    return causes


def _review_versions(versions: Any, path: str) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [required(path)]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        text = str(version)
        if text in seen:
            causes.append(invalid(f"{path}[{i}]", text, "duplicate version"))
            continue
        seen.add(text)
        for error in dns1035_errors(text):
            causes.append(invalid(f"{path}[{i}]", text, error))
    if not seen.intersection(REVIEW_VERSIONS):
        causes.append(
            invalid(path, go_strings(versions), f"must include at least one of {', '.join(REVIEW_VERSIONS)}")
        )
    return causes
