"""The API, fuzzed from its own OpenAPI schema (schemathesis): whatever it is sent, no route answers
5xx, every error is JSON with a message, and the schema it serves is valid OpenAPI."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.serve.conftest import TOKEN

ROUTES = {
    ("POST", "/v1/runs"), ("GET", "/v1/runs"), ("GET", "/v1/runs/{run_id}"),
    ("GET", "/v1/runs/{run_id}/events"), ("POST", "/v1/runs/{run_id}/stop"),
    ("POST", "/v1/runs/{run_id}/resume"), ("POST", "/v1/runs/{run_id}/retry"),
    ("GET", "/v1/runs/{run_id}/records"), ("GET", "/v1/records/{record_id}"),
    ("GET", "/v1/runs/{run_id}/failures"), ("GET", "/v1/runs/{run_id}/scorecards"),
    ("GET", "/v1/runs/{run_id}/report"), ("POST", "/v1/runs/{run_id}/exports"),
    ("GET", "/v1/exports/{job_id}"), ("GET", "/v1/exports/{job_id}/download"), ("GET", "/v1/health"),
    # the web UI's (issue 18)
    ("GET", "/v1/runs/{run_id}/datasets"), ("GET", "/v1/runs/{run_id}/datasets/{dataset}/rows"),
    ("GET", "/v1/records/{record_id}/reviews"), ("POST", "/v1/records/{record_id}/reviews"),
}  # fmt: skip


def test_no_input_makes_a_route_fail_with_5xx(serve):
    served = serve()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{served.url}/v1/openapi.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == ROUTES
    failures, calls = [], []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case) -> None:
            response = case.call(base_url=served.url, headers=auth, timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500 or (
                response.status_code >= 400 and "error" not in response.json()
            ):
                failures.append((case.method, case.formatted_path, response.status_code, response.text[:200]))

        check()
    assert not failures, failures[:5]
    assert len(calls) > 10 * len(operations) and {422, 404} <= set(calls)
    assert served.client.get("/v1/health").status_code == 200
