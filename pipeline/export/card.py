"""The dataset card (`README.md` with YAML metadata) of an export: counts, coverage per intended
category and tactic, the models and prompt versions that made the data (from lineage), license,
a content warning and the citations of the methods."""

from __future__ import annotations

from typing import Any

import yaml

from analysis import scorecard
from pipeline.export.review_stats import review_stats
from pipeline.export.rows import SPLITS
from pipeline.refusal_accounting import refusal_accounting, refusal_advice
from pipeline.store import Store
from pipeline.store.dataset_rows import DatasetQuery
from pipeline.taxonomy import hazard_categories

DESCRIPTIONS = {
    "core": "harmful instructions (TRIDENT, persona-based), each with an ethically aligned response",
    "edge": "core instructions rewritten with jailbreak tactics (TRIDENT-Edge), with aligned responses",
    "overrefusal_test": "harmless instructions that make models refuse (EvoRefuse), with refusal rates",
    "overrefusal_align": "harmless but refusal-triggering instructions with a helpful (chosen) and a "
    "refusing (rejected) answer (EvoRefuse)",
}

CITATIONS = """```bibtex
@inproceedings{wu2025trident,
  title     = {{TRIDENT}: Enhancing Large Language Model Safety with Tri-Dimensional Diversified
               Red-Teaming Data Synthesis},
  author    = {Wu, Xiaorui and Mao, Xiaofeng and Li, Fei and Zhang, Xin and Li, Xuanhong and Teng, Chong
               and Ji, Donghong and Li, Zhuang},
  booktitle = {Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics (ACL)},
  year      = {2025},
  note      = {arXiv:2505.24672}
}

@inproceedings{wu2025evorefuse,
  title     = {{EvoRefuse}: Evolutionary Prompt Optimization for Evaluation and Mitigation of {LLM}
               Over-Refusal to Pseudo-Malicious Instructions},
  author    = {Wu, Xiaorui and Li, Fei and Mao, Xiaofeng and Zhang, Xin and Zheng, Li and Peng, Yuxiang
               and Teng, Chong and Ji, Donghong and Li, Zhuang},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2025},
  note      = {arXiv:2505.23473}
}
```"""

WARNING = (
    "> **Content warning.** This dataset contains requests for harmful content (violence, crime, abuse, "
    "self-harm, hate and more) by design: it exists to train and test models to refuse them safely. It "
    "holds no instructions for causing harm. Do not use it to elicit harmful behaviour."
)


def card_stats(store: Store, run_id: str, queries: dict[str, DatasetQuery]) -> dict[str, Any]:
    """Counts per split, category and tactic of each dataset, and the run's lineage."""
    stats: dict[str, Any] = {"datasets": {}}
    for dataset, query in queries.items():
        counts: dict[str, dict[str, int]] = {"splits": {}, "categories": {}, "tactics": {}}
        for split, category, tactic, n in store.dataset_counts(query):
            for key, value in (("splits", split), ("categories", category), ("tactics", tactic)):
                counts[key][value] = counts[key].get(value, 0) + n
        stats["datasets"][dataset] = counts
    cards = {card["dataset"]: card for card in store.latest_scorecards(run_id=run_id)}
    stats["scorecards"] = {d: scorecard.headline(cards[d]) for d in queries if d in cards}
    stats["judges"] = store.judge_results(models=store.run_models(run_id))
    stats["refusals"] = refusal_accounting(store, run_id)
    stats["lineage"] = _lineage(store, run_id)
    stats["reviews"] = review_stats(store, run_id, list(queries))
    return stats


def _lineage(store: Store, run_id: str) -> list[dict[str, Any]]:
    """(stage, prompt, version, model, records) of the run, in pipeline order, then by key: never in
    commit order, which differs between identical runs."""
    from pipeline.kinds import stages_of

    order = {cls.name: i for i, cls in enumerate(stages_of(store.run_config(run_id) or {}))}
    rows = store.lineage_counts(run_id)
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0], r[1] or "", r[2] or 0, r[3] or ""))
    return [dict(zip(("stage", "prompt", "version", "model", "records"), r, strict=True)) for r in rows]


def render_card(manifest: dict[str, Any], stats: dict[str, Any], *, license: str, gated: str | None) -> str:
    metadata = yaml.safe_dump(_metadata(manifest, stats, license, gated), sort_keys=False)
    return f"---\n{metadata}---\n\n{_body(manifest, stats, license)}"


def _metadata(manifest: dict[str, Any], stats: dict[str, Any], license: str, gated: str | None) -> dict:
    total = sum(sum(d["splits"].values()) for d in stats["datasets"].values())
    meta: dict[str, Any] = {
        "license": license,
        "language": ["en"],
        "pretty_name": f"safeset {manifest['run_id']}",
        "task_categories": ["text-generation"],
        "tags": ["safety", "alignment", "red-teaming", "over-refusal", "synthetic", "safeset"],
        "size_categories": [_size_category(total)],
    }
    per_split = [
        {"config_name": name, "data_files": [{"split": s, "path": p} for s, p in part["files"].items()]}
        for name, part in manifest["parts"].items()
        if len(set(part["files"].values())) == len(part["files"]) and manifest["format"] != "hf"
    ]
    if per_split:
        meta["configs"] = per_split
    if gated:
        meta["extra_gated_prompt"] = (
            "This dataset contains harmful requests for safety research. Agree to use it only to train or "
            "evaluate models to respond safely."
        )
    return meta


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):  # fmt: skip
        if n < limit:
            return label
    return "n>10M"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _scorecards(cards: dict[str, dict[str, Any]]) -> list[str]:
    if not cards:
        return ["No coverage scorecard was computed for this run (`safeset score` makes one)."]
    metrics = list(next(iter(cards.values())))
    shown = [
        [metric, *(_number(card.get(metric)) for card in cards.values())]
        for metric in metrics
        if any(card.get(metric) is not None for card in cards.values())
    ]
    return [
        "### Scorecard (lexical diversity, malicious intent, jailbreak tactics)",
        _table(["metric", *cards], shown),
    ]


def _judges(rows: list[dict[str, Any]]) -> list[str]:
    title = "## How far to trust the filter"
    if not rows:
        return [title, "No LLM judge of this run's models has been checked against human labels; "
                "`safeset judges CONFIG` measures them."]  # fmt: skip
    metrics = ("agreement", "precision", "recall", "f1")
    table = _table(
        ["judge", "model", "rows judged", "agreement", "precision", "recall", "F1", "TP / FP / FN / TN",
         "category agreement"],
        [
            [r["judge"], r["model"], r["n"] - r["failed"], *(_number(r[m]) for m in metrics),
             f"{r['tp']} / {r['fp']} / {r['fn']} / {r['tn']}", _number(r["category_agreement"])]
            for r in rows
        ],
    )  # fmt: skip
    return [
        title,
        "LLM judges decided what entered this data: the safety filter kept the instructions it called "
        "unsafe, the response check rejected harmful or complying responses, a refusal judge scored "
        "refusals. `safeset judges` measured each judge (with the model this run used) against "
        "human-labelled files; positive = unsafe request, refusal or harmful response:",
        table,
    ]


def _refusals(refusals: dict[str, dict[str, Any]]) -> list[str]:
    if not refusals:
        return []
    rows = [
        [c, a["written"], a["refused"], f"{a['rate']:.0%}", a["lost_request"]] for c, a in refusals.items()
    ]
    advice = refusal_advice(refusals)
    return [
        "### Generator refusals per intended category",
        "Texts the generator wrote for scenarios, personas, instructions and rewrites, and how many of "
        "them were refusals (left out of the data), with the rewrites dropped for losing the request:",
        _table(["category", "written", "refused", "rate", "rewrites that lost the request"], rows),
        *([advice] if advice else []),
    ]


def _reviews(reviews: dict[str, Any], reviewed_only: bool) -> list[str]:
    title = "## Review by hand"
    if not reviews:
        return [title, "Nobody reviewed this run's records by hand (the web UI of `safeset serve` does)."]
    kept = "only rows a reviewer accepted or edited" if reviewed_only else "every row not rejected"
    sections = [
        title,
        f"Reviewers read records in the web UI of `safeset serve`. This export holds {kept}, with the "
        "edits of the latest review applied. Coverage of the records of the run:",
        _table(
            ["dataset", "records", "reviewed", "coverage", "rejected", "edited"],
            [[d, c["records"], c["reviewed"], f"{c['reviewed'] / c['records']:.0%}" if c["records"] else "-",
              c["rejected"], c["edited"]] for d, c in reviews["coverage"].items()],
        ),
        "Rejection rate per intended category, over the reviewed records:",
        _table(
            ["category", "reviewed", "rejected", "rate"],
            [[c, v["reviewed"], v["rejected"], f"{v['rate']:.0%}"] for c, v in reviews["categories"].items()],
        ),
    ]  # fmt: skip
    if reviews["agreement"]:
        sections += [
            "Agreement of reviewers who decided on the same records (Cohen's kappa over accept / reject / "
            "edit):",
            _table(
                ["reviewers", "records", "kappa"],
                [[a["reviewers"], a["records"], _number(a["kappa"])] for a in reviews["agreement"]],
            ),
        ]
    return sections


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _body(manifest: dict[str, Any], stats: dict[str, Any], license: str) -> str:
    names = {c.code: c.name for c in hazard_categories()}
    datasets = stats["datasets"]
    sections = [
        f"# safeset export of run `{manifest['run_id']}`",
        WARNING,
        f"Generated with safeset {manifest['safeset_version']} from run `{manifest['run_id']}` (seed "
        f"{manifest['seed']}), exported as `{manifest['format']}`. Every row keeps its `id`, which leads "
        "back to the full lineage in the run's database (`safeset inspect ID`).",
        "## Datasets",
        _table(
            ["dataset", *SPLITS, "what it holds"],
            [[d, *(c["splits"].get(s, 0) for s in SPLITS), DESCRIPTIONS[d]] for d, c in datasets.items()],
        ),
        "## Files",
        _table(
            ["part", "dataset", "split", "rows", "file"],
            [
                [name, part["dataset"], split, part["rows"][split], f"`{path}`"]
                for name, part in manifest["parts"].items()
                for split, path in part["files"].items()
            ],
        ),
        f"Splits are stratified by intended category: within each category, rows ordered by "
        f"md5(seed, id) and the first {manifest['test_fraction']:.0%} (rounded) form `test`, so a "
        "re-export gives the same split.",
        "## Coverage",
    ]
    for dataset, counts in datasets.items():
        categories = [[c, names.get(c, ""), n] for c, n in sorted(counts["categories"].items())]
        sections.append(f"### {dataset}: rows per intended category")
        sections.append(_table(["category", "name", "rows"], categories))
        tactics = {t: n for t, n in counts["tactics"].items() if t != "-"}
        if tactics:
            sections.append(f"### {dataset}: rows per jailbreak tactic")
            sections.append(_table(["tactic", "rows"], sorted(tactics.items())))
    sections += _scorecards(stats["scorecards"])
    sections += _judges(stats["judges"])
    sections += _refusals(stats.get("refusals") or {})
    sections += _reviews(stats.get("reviews") or {}, manifest.get("reviewed_only", False))
    sections += [
        "## Models and prompts",
        "Every record names the prompt template (and version) and the model that made it:",
        _table(
            ["stage", "prompt", "model", "records"],
            [
                [
                    r["stage"],
                    f"{r['prompt']}@{r['version']}" if r["prompt"] else "-",
                    r["model"] or "-",
                    r["records"],
                ]  # fmt: skip
                for r in stats["lineage"]
            ],
        ),
        "## License",
        f"`{license}`. The models that generated the data may impose terms of their own on their outputs.",
        "## Citation",
        "The methods this data follows:",
        CITATIONS,
    ]
    return "\n\n".join(sections) + "\n"
