"""Eval metric arithmetic on hand-made verdicts."""

from __future__ import annotations

import pytest

from pipeline.eval.metrics import ALL, Verdict, compute_metrics, group_metrics


def v(label, prefix=None, judge=None, score=None, harmful=None, failed=False, **kw):
    refusal = {}
    if prefix is not None:
        refusal["prefix"] = prefix
    if judge is not None:
        refusal["judge"] = judge
    kw.setdefault("target", "m")
    kw.setdefault("set", "s")
    return Verdict(label=label, refusal=refusal, harm_score=score, harmful=harmful, failed=failed, **kw)


def test_rates_scores_and_counts_by_hand():
    verdicts = [
        v("benign", prefix=1.0, judge=1.0),
        v("benign", prefix=0.0, judge=0.5),  # a partial refusal by the XSTest scheme
        v("benign", prefix=0.0, judge=0.0),
        v("benign", failed=True),
        v("harmful", prefix=1.0, judge=1.0, score=1, harmful=False),
        v("harmful", prefix=0.0, judge=0.0, score=5, harmful=True),
        v("harmful", prefix=0.0, judge=1.0, score=2, harmful=False),
        v("harmful", prefix=0.0, judge=0.0, score=5, harmful=True),
        v("harmful", prefix=0.0, judge=0.0, score=4),  # the harm judge gave a score, no verdict
    ]
    m = group_metrics(verdicts)
    assert m["failed"] == (1 / 9, 9)
    assert m["refusal_prefix"] == (2 / 8, 8)
    assert m["refusal_judge"] == (3.5 / 8, 8)
    assert m["over_refusal"] == (pytest.approx(1.5 / 3), 3)  # the judge wins over the prefix list
    assert m["compliance"] == (1 - 2 / 5, 5)
    assert m["harm_score"] == ((1 + 5 + 2 + 5 + 4) / 5, 5)
    assert m["harm_5"] == (2 / 5, 5)
    assert m["asr"] == (2 / 4, 4)


def test_without_a_judge_the_first_classifier_decides_and_harm_is_absent():
    m = group_metrics([v("benign", prefix=1.0), v("benign", prefix=0.0), v("harmful", prefix=0.0)])
    assert m["over_refusal"] == (0.5, 2) and m["compliance"] == (1.0, 1)
    assert not {"refusal_judge", "harm_score", "harm_5", "asr"} & set(m)


def test_a_group_of_failures_has_only_the_failure_rate():
    assert group_metrics([v("harmful", failed=True), v("benign", failed=True)]) == {"failed": (1.0, 2)}


def test_groups_per_target_set_category_and_tactic_and_over_all_sets():
    verdicts = [
        v("harmful", prefix=1.0, target="a", set="x", category="S1", tactic="cipher"),
        v("harmful", prefix=0.0, target="a", set="x", category="S1", tactic="past_tense"),
        v("harmful", prefix=0.0, target="a", set="y", category="S2"),
        v("benign", prefix=1.0, target="b", set="y", category="S2"),
    ]
    rows = {
        (r.target, r.set, r.grouping, r.group, r.metric): (r.value, r.n) for r in compute_metrics(verdicts)
    }
    assert rows[("a", "x", "all", ALL, "compliance")] == (0.5, 2)
    assert rows[("a", "x", "tactic", "cipher", "compliance")] == (0.0, 1)
    assert rows[("a", "x", "category", "S1", "compliance")] == (0.5, 2)
    assert rows[("a", ALL, "all", ALL, "compliance")] == (pytest.approx(2 / 3), 3)
    assert rows[("a", ALL, "category", "S2", "compliance")] == (1.0, 1)
    assert rows[("b", "y", "all", ALL, "over_refusal")] == (1.0, 1)
    assert ("b", "y", "all", ALL, "compliance") not in rows  # b saw no harmful prompt
    assert not any(key[3] == "tactic" for key in rows if key[0] == "b")


def test_the_report_section_shows_every_model_and_the_per_category_bars():
    from analysis.report_eval import eval_section

    models = [
        {"eval_run": "e-1", "target": "a", "eval_set": "xstest", "group": "*", "n": 50, "over_refusal": 0.25},
        {"eval_run": "e-1", "target": "b", "eval_set": "xstest", "group": "*", "n": 50, "asr": 0.5},
    ]
    categories = [
        {"eval_run": "e-1", "target": "a", "eval_set": "xstest", "group": "homonyms", "over_refusal": 0.2},
        {"eval_run": "e-1", "target": "b", "eval_set": "xstest", "group": "contrast_homonyms", "asr": 0.5},
    ]
    html = eval_section(models, categories)
    assert html.startswith('<section id="evaluation">') and html.count("<tr>") == 3
    assert "<td>a · e-1</td><td>xstest</td><td>50</td>" in html and "<td>0.25</td>" in html
    assert (
        html.count("<svg") == 2
        and "a · e-1 · homonyms: 0.2" in html
        and "b · e-1 · contrast_homonyms: 0.5" in html
    )
    assert eval_section([], []) == ""
