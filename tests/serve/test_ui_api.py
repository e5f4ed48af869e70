"""What the web UI reads and writes, through a real `safeset serve` (no browser): the dataset browser's
filtered pages and counts, reviews of a record, and the token on pages, the API and the cookie."""

from __future__ import annotations

import httpx
import pytest

from pipeline.store import Store
from tests.pipeline.export.made_run import RUN, make_run
from tests.serve.conftest import TOKEN


@pytest.fixture
def served(serve, tmp_path):
    db = tmp_path / "made.duckdb"
    make_run(db)
    return serve(db)


def rows(served, dataset="core", **params):
    answer = served.client.get(f"/v1/runs/{RUN}/datasets/{dataset}/rows", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_browser_pages_and_filters_in_the_database_with_counts(served):
    assert served.client.get(f"/v1/runs/{RUN}/datasets").json()["datasets"] == {
        "core": 30, "edge": 30, "overrefusal_test": 30, "overrefusal_align": 30,
    }  # fmt: skip
    first, second = rows(served, limit=20), rows(served, limit=20, offset=20)
    assert first["total"] == 30 and len(first["items"]) == 20 and len(second["items"]) == 10
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    assert first["counts"]["category"] == {"S1": 10, "S2": 10, "S10": 10}
    assert first["counts"]["agreement"] == {"agree": 18, "unjudged": 12}

    s2 = rows(served, category="S2", agreement="unjudged")
    assert s2["total"] == 4 and all(
        r["category"] == "S2" and r["judged_category"] is None for r in s2["items"]
    )
    assert s2["counts"]["category"] == {"S2": 4}
    edge = rows(served, "edge", tactic="roleplay", persona_id="persona-1")
    assert edge["total"] and all(r["tactic"] == "roleplay" and r["persona_id"] == "persona-1"
                                 for r in edge["items"])  # fmt: skip
    assert rows(served, tactic="-")["total"] == 30  # '-': no tactic, as the counts name it
    assert rows(served)["counts"]["tactic"] == {"-": 30}
    assert rows(served, q="IN s10")["total"] == 10  # case-blind
    assert rows(served, q=".*")["total"] == 0  # literal
    assert rows(served, q="request 1 in S1(")["total"] == 0
    found = rows(served, q="PLACEHOLDER REQUEST 7 ")
    assert [r["data"]["instruction"] for r in found["items"]] == ["placeholder request 7 in S1"]

    record_id = first["items"][0]["id"]
    posted = served.client.post(
        f"/v1/records/{record_id}/reviews", json={"reviewer": "ana", "decision": "reject"}
    )
    assert posted.status_code == 201 and posted.json()["decision"] == "reject"
    rejected = rows(served, review="reject")
    assert [r["id"] for r in rejected["items"]] == [record_id] and rejected["items"][0]["reviewer"] == "ana"
    assert rows(served)["counts"]["review"] == {"reject": 1, "unreviewed": 29}


def test_bad_browser_requests_are_refused(served):
    assert served.client.get(f"/v1/runs/{RUN}/datasets/personas/rows").status_code == 404
    assert served.client.get("/v1/runs/nope/datasets/core/rows").status_code == 404
    for params in ({"limit": 0}, {"limit": 1000}, {"offset": -1}, {"review": "maybe"}, {"agreement": "x"}):
        assert served.client.get(f"/v1/runs/{RUN}/datasets/core/rows", params=params).status_code == 422


def test_reviews_are_appended_and_bad_ones_refused(served):
    record_id = rows(served, limit=1)["items"][0]["id"]
    url = f"/v1/records/{record_id}/reviews"
    edit = {"reviewer": "ben", "decision": "edit", "edits": {"response": "better"}, "note": "<i>tone</i>"}
    assert served.client.post(url, json={"reviewer": "ana", "decision": "accept"}).status_code == 201
    assert served.client.post(url, json=edit).status_code == 201
    history = served.client.get(url).json()["reviews"]
    assert [(r["reviewer"], r["decision"], r["edits"]) for r in history] == [
        ("ana", "accept", None), ("ben", "edit", {"response": "better"}),
    ]  # fmt: skip
    bad = [
        {"reviewer": "ana", "decision": "maybe"},
        {"reviewer": "", "decision": "accept"},
        {"reviewer": "ana", "decision": "edit"},
        {"reviewer": "ana", "decision": "edit", "edits": {"chosen": "x"}},  # a core record has no chosen
        {"reviewer": "ana", "decision": "edit", "edits": {"category": "S2"}},
        {"reviewer": "ana", "decision": "accept", "extra": 1},
    ]
    for body in bad:
        answer = served.client.post(url, json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert (
        served.client.post(
            "/v1/records/0000/reviews", json={"reviewer": "a", "decision": "accept"}
        ).status_code
        == 404
    )
    assert len(served.client.get(url).json()["reviews"]) == 2
    served.stop()
    store = Store.open(served.db, read_only=True)  # in the database, as the export reads it
    try:
        assert store.latest_review(record_id)["decision"] == "edit"
    finally:
        store.close()


def test_pages_without_the_token_go_to_the_prompt_and_the_api_still_needs_it(serve):
    served = serve()
    for path in ("/", "/anything"):
        answer = httpx.get(served.url + path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert httpx.get(served.url + "/login").status_code == 200
    assert "script-src 'self'" in httpx.get(served.url + "/login").headers["content-security-policy"]
    assert httpx.get(served.url + "/ui/app.js").status_code == 200  # the code holds no data
    assert httpx.get(served.url + "/v1/runs").status_code == 401
    wrong = {"safeset_token": "wrong"}
    assert httpx.get(served.url + "/v1/runs", cookies=wrong).status_code == 401
    assert httpx.get(served.url + "/", cookies=wrong, follow_redirects=False).status_code == 303
    cookie = {"safeset_token": TOKEN}
    assert httpx.get(served.url + "/v1/runs", cookies=cookie).status_code == 200
    assert httpx.get(served.url + "/", cookies=cookie).text.startswith("<!doctype html>")
    # a request that changes anything needs the header, never the cookie alone (no cross-site writes)
    posted = httpx.post(served.url + "/v1/runs", json={"config": "name: x"}, cookies=cookie)
    assert posted.status_code == 401
