"""The scoring service over HTTP. Every failure becomes a `ServiceError` with a message for people: the app shows
it, never a stack trace.

Every score the app asks for is a preview (`X-Traffic: preview`): the tester scores test-set applicants and what-if
edits of them again at each change of the form, none of which is an application the model decides on, so none of it
counts as production traffic in monitoring (the drift stage reads production traffic only)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from scoring.serving.request_schema import TRAFFIC_HEADER

DEFAULT_URL = "http://127.0.0.1:8000"


def service_url() -> str:
    return os.environ.get("SCORING_API_URL", DEFAULT_URL).rstrip("/")


@dataclass
class ServiceError(Exception):
    """The service could not be reached or refused the request; `problems` are its (field, rule, value) details."""

    message: str
    status: int | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def problems_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The service's `{"detail": [{"field", "rule", "value"?}]}`; anything else as one problem."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return [{"field": "response", "rule": response.text[:300] or response.reason_phrase}]
    if isinstance(detail, list) and all(isinstance(item, dict) for item in detail):
        return detail
    return [{"field": "response", "rule": str(detail)[:300]}]


@dataclass(frozen=True)
class ScoringClient:
    base_url: str
    timeout: float = 15.0
    traffic: str = "preview"
    """What the scores asked for are (`scoring.serving.traffic`), sent as the X-Traffic header."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.ConnectError:
            raise ServiceError(f"The scoring service at {self.base_url} cannot be reached (connection refused). "
                               "Start it (`python -m serve.run`) or point SCORING_API_URL at it.") from None
        except httpx.TimeoutException:
            raise ServiceError(f"The scoring service at {self.base_url} did not answer {method} {path} within "
                               f"{self.timeout:g} s.") from None
        except httpx.HTTPError as error:
            raise ServiceError(f"The request to {url} failed: {error}") from None
        if response.status_code >= 400:
            problems = problems_of(response)
            raise ServiceError(f"The service refused {method} {path} (HTTP {response.status_code}): "
                               f"{len(problems)} problem{'s' * (len(problems) > 1)}, each with its field and rule.",
                               response.status_code, problems)
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"{method} {path} answered something that is not JSON: {response.text[:200]!r}",
                               response.status_code) from None

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def model(self) -> dict[str, Any]:
        return self.request("GET", "/model")

    def score(self, applicant: dict[str, Any], reasons: int) -> dict[str, Any]:
        return self.request("POST", "/score", params={"reasons": reasons}, json=applicant,
                            headers={TRAFFIC_HEADER: self.traffic})

    def score_raw(self, body: str, reasons: int) -> dict[str, Any]:
        """A hand-edited JSON body, sent as typed (malformed JSON included: the service says what is wrong)."""
        return self.request("POST", "/score", params={"reasons": reasons}, content=body.encode(),
                            headers={"content-type": "application/json", TRAFFIC_HEADER: self.traffic})
