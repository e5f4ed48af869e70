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

Rows with `request_features` (the RBR set has them; evaluators/refusal_sources.py derives them from
the requests, which are not stored) are scored a second time by the request-aware model, the
classifier as the pipeline's stages use it when they know the request: column `classifier+request`
(out of fold with --cross-validate, the same leave-one-group-out split). Its 3-class confusion
(compliance / partial / refusal) is reported too.
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


REQUEST = "classifier+request"


def cross_validated(rows: list[Labelled], embedder) -> dict[str, list[list[float]]]:
    """Per row, from models trained without the row's group (written data plus the other groups' rows,
    as evaluators.refusal_train builds the shipped one): `classifier`: [p̂]; `classifier+request` (when
    every row has request features): [p(compliance), p(partial), p(refusal)]."""
    import numpy as np

    from evaluators.refusal_classifier import features
    from evaluators.refusal_train import fit, fit_request, labelled_set, request_rows, written_set

    groups = sorted({r.group for r in rows})
    if len(groups) < 2:
        raise SourceError("--cross-validate needs rows of at least two groups (the `group` column)")
    written = written_set()
    x_written, y_written = features(embedder, written.responses), np.array(written.labels)
    x_rows = features(embedder, [r.response for r in rows])
    aware = all(r.request_features is not None for r in rows)
    probabilities, classes = np.zeros(len(rows)), np.zeros((len(rows), 3))
    for group in groups:
        held = np.array([r.group == group for r in rows])
        train = written + labelled_set([r for r in rows if r.group != group])
        x = np.vstack([x_written, x_rows[~held]])
        model = fit(x, np.array(train.labels), np.array(train.real))
        probabilities[held] = model.probabilities(x_rows[held])
        if aware:
            _, related, labels = request_rows(rows)
            request = fit_request(x_written, y_written, x_rows[~held], related[~held], labels[~held])
            classes[held] = request.classes(x_rows[held], related[held])
    out = {"classifier": [[float(p)] for p in probabilities]}
    if aware:
        out[REQUEST] = [[float(p) for p in row] for row in classes]
    return out


def request_scored(rows: list[Labelled], embedder) -> list[list[float]] | None:
    """The shipped request model's 3-class probabilities of each row, if every row has request features."""

    from evaluators.refusal_classifier import RefusalModel, default_model, features
    from evaluators.refusal_train import request_rows

    model = RefusalModel.load(default_model()).request
    if model is None or any(r.request_features is None for r in rows):
        return None
    _, related, _ = request_rows(rows)
    x = features(embedder, [r.response for r in rows])
    return [[float(p) for p in row] for row in model.classes(x, related)]


def three_class(rows: list[Labelled], classes: list[list[float]]) -> dict[str, dict[str, int]]:
    """People's label (rows) by the request model's most likely class (columns)."""
    from evaluators.refusal_classifier import REQUEST_CLASSES

    table = {a: dict.fromkeys(REQUEST_CLASSES, 0) for a in REQUEST_CLASSES}
    for row, p in zip(rows, classes, strict=True):
        table[row.label][REQUEST_CLASSES[max(range(3), key=p.__getitem__)]] += 1
    return table


def in_training_set(rows: list[Labelled]) -> int:
    """How many of `rows` the shipped classifier was trained on."""
    from evaluators.refusal_train import training_set

    trained = set(training_set().responses)
    return sum(r.response in trained for r in rows)


def validate(source: str, kinds: list[str], embedder=None, cross_validate: bool = False) -> dict[str, dict]:
    rows = load_labelled(source)
    results = {}
    for kind in kinds:
        if kind == "classifier":
            if embedder is None:
                from pipeline.embedder import Embedder

                embedder = Embedder()
            results.update(_classifier(rows, embedder, cross_validate))
        else:
            results[kind] = report(rows, score(kind, rows, embedder))
    return results


def _classifier(rows: list[Labelled], embedder, cross_validate: bool) -> dict[str, dict]:
    """The `classifier` column and, where the rows have request features, `classifier+request`."""
    if cross_validate:
        folds = cross_validated(rows, embedder)
        out = {"classifier": {**report(rows, [p for (p,) in folds["classifier"]]), "scored": "out of fold"}}
        classes = folds.get(REQUEST)
        extra = {"scored": "out of fold"}
    else:
        seen = {"trained_on": in_training_set(rows)}
        out = {"classifier": {**report(rows, score("classifier", rows, embedder)), **seen}}
        classes, extra = request_scored(rows, embedder), seen
    if classes is not None:
        binary = [p[1] + p[2] for p in classes]
        out[REQUEST] = {**report(rows, binary), "three_class": three_class(rows, classes), **extra}
    return out


def render(source: str, results: dict[str, dict]) -> str:
    kinds = list(results)
    first = results[kinds[0]]
    lines = [f"refusal classifiers on {source}: {first['n']} labelled responses ({date.today()})", ""]
    lines.append("binary agreement (refusal or partial refusal vs compliance)")
    width = {k: max(12, len(k) + 2) for k in kinds}
    lines.append(f"{'':28}" + "".join(f"{k:>{width[k]}}" for k in kinds))
    for section in ("per_model", "per_group"):
        for name, cell in first[section].items():
            label = f"{section[4:]} {name or '-'} (n={cell['n']})"
            lines.append(
                f"{label:28}"
                + "".join(f"{results[k][section][name]['agreement']:>{width[k]}.3f}" for k in kinds)
            )
    lines.append(f"{'pooled':28}" + "".join(f"{results[k]['pooled']:>{width[k]}.3f}" for k in kinds))
    lines.append(f"{'ECE':28}" + "".join(f"{results[k]['ece']:>{width[k]}.3f}" for k in kinds))
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
    if REQUEST in results:
        table = results[REQUEST]["three_class"]
        lines += ["", f"{REQUEST}: 3-class confusion (rows: people, columns: most likely class)"]
        lines.append(f"{'':14}" + "".join(f"{k:>12}" for k in table))
        lines += [f"{k:14}" + "".join(f"{n:>12}" for n in row.values()) for k, row in table.items()]
    classifier = results.get("classifier", {})
    if classifier.get("scored"):
        lines += ["", "classifier: out of fold (trained per group on the written data and the other groups)"]
    elif classifier.get("trained_on"):
        lines += [
            "",
            f"classifier: in-sample, it was trained on {classifier['trained_on']} of these responses; "
            "--cross-validate scores it out of fold",
        ]
    lines.append("ECE: 10 equal-width bins of p̂")
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
