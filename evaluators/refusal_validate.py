"""How far the offline refusal classifiers agree with people on real, labelled model responses.

    python -m evaluators.refusal_validate                    # data/refusal/rbr_gold.jsonl
    python -m evaluators.refusal_validate --data mine.jsonl --kinds classifier prefix --json
    python -m evaluators.refusal_validate --cross-validate   # the classifier out of sample, see below

A labelled file has a `response` and a `label` per row: `refusal`, `partial` or `compliance` (or
true/false, where true is a refusal); `model` and `group` are optional and break the figures down.
The binary question is XSTest's: refusal or partial refusal versus compliance. Per classifier it
reports agreement per source model, per group and pooled (p̂ >= 0.5 counts as a refusal), the
confusion matrix, and the expected calibration error (10 equal-width bins of p̂).

The shipped classifier was trained on data/refusal/rbr_gold.jsonl too, so its figures there are
in-sample (the report says so). `--cross-validate` measures the recipe out of sample: leaving one
`group` out at a time (on the RBR set, one prompt category), it trains a classifier the way
`python -m evaluators.refusal_train` does, on the written data plus the file's other groups, and
scores the group it left out; the other kinds are scored as they are (they never train on the file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from datetime import date

from evaluators.refusal import ClassifierConfig, EmbeddingConfig, PrefixConfig, SubstringConfig
from evaluators.refusal_labels import Labelled, load_labelled
from pipeline.resources import data_dir
from pipeline.sources import SourceError

OFFLINE = {
    "classifier": ClassifierConfig(kind="classifier"),
    "prefix": PrefixConfig(kind="prefix"),
    "substring": SubstringConfig(kind="substring"),
    "embedding": EmbeddingConfig(kind="embedding"),
}


def default_data() -> str:
    return str(data_dir() / "refusal" / "rbr_gold.jsonl")


def expected_calibration_error(probabilities: list[float], labels: list[int], bins: int = 10) -> float:
    """Σ_b (n_b / n) |mean label − mean p̂| over equal-width bins of p̂."""
    groups: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for p, y in zip(probabilities, labels, strict=True):
        groups[min(int(p * bins), bins - 1)].append((p, y))
    n = len(labels)
    return sum(
        len(g) / n * abs(sum(y for _, y in g) / len(g) - sum(p for p, _ in g) / len(g))
        for g in groups.values()
    )


def agreement(probabilities: list[float], labels: list[int]) -> float:
    return sum((p >= 0.5) == bool(y) for p, y in zip(probabilities, labels, strict=True)) / len(labels)


def report(rows: list[Labelled], probabilities: list[float]) -> dict:
    """Agreement per model and group and pooled, the confusion matrix (and by 3-class label), ECE."""
    labels = [r.refusal for r in rows]
    by: dict[str, dict[str, list[int]]] = {"model": defaultdict(list), "group": defaultdict(list)}
    for i, row in enumerate(rows):
        by["model"][row.model].append(i)
        by["group"][row.group].append(i)
    confusion = {"refusal_as_refusal": 0, "refusal_as_compliance": 0, "compliance_as_refusal": 0,
                 "compliance_as_compliance": 0}  # fmt: skip
    by_label: dict[str, dict[str, int]] = defaultdict(lambda: {"refusal": 0, "compliance": 0})
    for row, p in zip(rows, probabilities, strict=True):
        said = "refusal" if p >= 0.5 else "compliance"
        confusion[f"{'refusal' if row.refusal else 'compliance'}_as_{said}"] += 1
        by_label[row.label][said] += 1

    def part(indices: list[int]) -> dict:
        return {
            "n": len(indices),
            "agreement": agreement([probabilities[i] for i in indices], [labels[i] for i in indices]),
        }

    return {
        "n": len(rows),
        "pooled": agreement(probabilities, labels),
        "ece": expected_calibration_error(probabilities, labels),
        "per_model": {k: part(v) for k, v in sorted(by["model"].items())},
        "per_group": {k: part(v) for k, v in sorted(by["group"].items())},
        "confusion": confusion,
        "by_label": dict(sorted(by_label.items())),
    }


def score(kind: str, rows: list[Labelled], embedder=None) -> list[float]:
    from evaluators.refusal import build_refusal_classifier

    needs = "embedder" in OFFLINE[kind].needs
    if needs and embedder is None:
        from pipeline.embedder import Embedder

        embedder = Embedder()
    classifier = build_refusal_classifier(OFFLINE[kind], embedder=embedder if needs else None)
    return asyncio.run(classifier.probabilities([""] * len(rows), [r.response for r in rows]))


def cross_validated(rows: list[Labelled], embedder) -> list[float]:
    """The classifier's p̂ of each row from a model trained without the row's group (written data plus
    the other groups' rows, as evaluators.refusal_train builds the shipped one)."""
    import numpy as np

    from evaluators.refusal_classifier import features
    from evaluators.refusal_train import fit, labelled_set, written_set

    groups = sorted({r.group for r in rows})
    if len(groups) < 2:
        raise SourceError("--cross-validate needs rows of at least two groups (the `group` column)")
    written = written_set()
    x_written = features(embedder, written.responses)
    x_rows = features(embedder, [r.response for r in rows])
    probabilities = np.zeros(len(rows))
    for group in groups:
        held = np.array([r.group == group for r in rows])
        train = written + labelled_set([r for r in rows if r.group != group])
        x = np.vstack([x_written, x_rows[~held]])
        model = fit(x, np.array(train.labels), np.array(train.real))
        probabilities[held] = model.probabilities(x_rows[held])
    return [float(p) for p in probabilities]


def in_training_set(rows: list[Labelled]) -> int:
    """How many of `rows` the shipped classifier was trained on."""
    from evaluators.refusal_train import training_set

    trained = set(training_set().responses)
    return sum(r.response in trained for r in rows)


def validate(source: str, kinds: list[str], embedder=None, cross_validate: bool = False) -> dict[str, dict]:
    rows = load_labelled(source)
    results = {}
    for kind in kinds:
        if kind == "classifier" and cross_validate:
            if embedder is None:
                from pipeline.embedder import Embedder

                embedder = Embedder()
            results[kind] = {**report(rows, cross_validated(rows, embedder)), "scored": "out of fold"}
        elif kind == "classifier":
            seen = in_training_set(rows)
            results[kind] = {**report(rows, score(kind, rows, embedder)), "trained_on": seen}
        else:
            results[kind] = report(rows, score(kind, rows, embedder))
    return results


def render(source: str, results: dict[str, dict]) -> str:
    kinds = list(results)
    first = results[kinds[0]]
    lines = [f"refusal classifiers on {source}: {first['n']} labelled responses ({date.today()})", ""]
    lines.append("binary agreement (refusal or partial refusal vs compliance)")
    lines.append(f"{'':28}" + "".join(f"{k:>12}" for k in kinds))
    for section in ("per_model", "per_group"):
        for name, cell in first[section].items():
            label = f"{section[4:]} {name or '-'} (n={cell['n']})"
            lines.append(
                f"{label:28}" + "".join(f"{results[k][section][name]['agreement']:>12.3f}" for k in kinds)
            )
    lines.append(f"{'pooled':28}" + "".join(f"{results[k]['pooled']:>12.3f}" for k in kinds))
    lines.append(f"{'ECE':28}" + "".join(f"{results[k]['ece']:>12.3f}" for k in kinds))
    for kind in kinds:
        c = results[kind]["confusion"]
        lines += ["", f"{kind}: confusion (rows: people, columns: classifier)"]
        lines.append(f"{'':14}{'refusal':>10}{'compliance':>12}")
        lines.append(f"{'refusal':14}{c['refusal_as_refusal']:>10}{c['refusal_as_compliance']:>12}")
        lines.append(f"{'compliance':14}{c['compliance_as_refusal']:>10}{c['compliance_as_compliance']:>12}")
        called = [
            f"{k} {v['refusal']}/{v['refusal'] + v['compliance']}"
            for k, v in results[kind]["by_label"].items()
        ]
        lines.append(f"  called refusal, by label: {', '.join(called)}")
    classifier = results.get("classifier", {})
    if classifier.get("scored"):
        lines += ["", "classifier: out of fold (trained per group on the written data and the other groups)"]
    elif classifier.get("trained_on"):
        lines += [
            "",
            f"classifier: in-sample, it was trained on {classifier['trained_on']} of these responses; "
            "--cross-validate scores it out of fold",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluators.refusal_validate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data", default=default_data(), help="labelled responses (response, label[, model, group])"
    )
    parser.add_argument("--kinds", nargs="+", choices=list(OFFLINE), default=list(OFFLINE))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--cross-validate",
        action="store_true",
        help="score the classifier out of fold: trained per group without that group's rows",
    )
    args = parser.parse_args(argv)
    try:
        results = validate(args.data, args.kinds, cross_validate=args.cross_validate)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=1) if args.json else render(args.data, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
