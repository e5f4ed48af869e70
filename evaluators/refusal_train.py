"""Build the calibrated refusal classifier's model file from the data in data/refusal/.

    python -m evaluators.refusal_train                  # writes data/refusal/classifier.json
    python -m evaluators.refusal_train --out my.json --examples mine.jsonl

Training set (`training_set`):
- written for safeset (`written_set`): the 386 short refusing and helpful responses of
  data/refusal/responses.jsonl; responses composed from the pieces in data/refusal/written.yaml
  with a fixed seed: full refusals of one to eight sentences (some opening with empathy rather than
  "sorry", some that only redirect), partial refusals (decline, pivot, then help), and helpful
  answers, short and long, bare or opening with a disclaimer, a warning, an apology for something
  else or a note on the model's limits, and ending with a caution; and texts that are not responses,
  so never refusals: user requests, scenarios and personas (what a generator writes) and word salad;
- real model responses labelled by people: the 477 of OpenAI's Safety RBR gold set
  (data/refusal/rbr_gold.jsonl, MIT), a partial refusal counted as a refusal;
- optionally a file of your own (`response`, `refusal` true/false).

Fit: standardised features, L2 logistic regression (lbfgs), Platt scaling fitted on 5-fold
out-of-fold scores of the real responses (so p̂ is calibrated on real output, not on the written
mix, and not the training fit's overconfident one).

The request model (`fit_request`, used when the request is known): a response-only logistic
regression on the written set alone, whose decision on each RBR response joins that response's
stored `request_features` in a 3-class (compliance / partial / refusal) L2 logistic regression
fitted on the RBR rows. It needs no calibration step: fitted on real rows with strong
regularisation, its out-of-fold ECE is lower than with Platt or isotonic scaling on inner
out-of-fold scores (data/refusal/README.md).

Everything is seeded: the same data gives the same file. `python -m evaluators.refusal_validate
--cross-validate` measures both recipes on groups of the RBR set they did not train on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from evaluators.refusal_classifier import (
    EMBEDDING_MODEL,
    PHRASE_FEATURES,
    REQUEST_CLASSES,
    RefusalModel,
    RequestModel,
    default_model,
    features,
)
from evaluators.refusal_embedding import default_examples, load_examples
from evaluators.refusal_labels import Labelled, load_labelled
from pipeline.resources import data_dir

SEED = 0
REGULARIZATION = 0.5  # C of the logistic regression (inverse L2 strength)
REQUEST_REGULARIZATION = 0.1  # C of the request model's 3-class regression
FOLDS = 5
COMPOSED = {"refusal": 420, "deflection": 300, "partial": 260, "answer": 300, "hedged_answer": 480}
SALAD = 120  # word-salad texts composed from written.yaml's salad_words


@dataclass(frozen=True)
class TrainingSet:
    responses: list[str]
    labels: list[int]  # 1: refusal or partial refusal
    real: list[bool]  # a real model response labelled by people: Platt scaling is fitted on these

    def __add__(self, other: TrainingSet) -> TrainingSet:
        return TrainingSet(
            self.responses + other.responses, self.labels + other.labels, self.real + other.real
        )


def _pieces() -> dict[str, list[str]]:
    return yaml.safe_load((data_dir() / "refusal" / "written.yaml").read_text())


def _some(rng: random.Random, items: list[str], low: int, high: int) -> list[str]:
    return rng.sample(items, rng.randint(low, high))


def compose(rng: random.Random, kind: str, pieces: dict[str, list[str]], short: dict[bool, list[str]]) -> str:
    """One response of a kind; `short` holds the short refusals (True) and answers (False)."""
    refusal_openers = pieces["refusal_openers"] + short[True]
    answers = pieces["answers"] + short[False]
    preface = [rng.choice(pieces["refusal_prefaces"])] if rng.random() < 0.4 else []
    if kind == "refusal":
        parts = [*preface, rng.choice(refusal_openers), *_some(rng, pieces["refusal_reasons"], 0, 3)]
        parts += _some(rng, pieces["refusal_alternatives"], 0, 3)
        parts += [rng.choice(pieces["refusal_closings"])] if rng.random() < 0.3 else []
    elif kind == "deflection":
        topic, expert = rng.choice(pieces["topics"]), rng.choice(pieces["experts"])
        steers = [t.format(topic=topic, expert=expert) for t in pieces["topic_deflections"]]
        parts = [*preface, *_some(rng, pieces["deflections"] + steers, 1, 4)]
        parts += _some(rng, pieces["refusal_alternatives"], 0, 2)
    elif kind == "partial":
        parts = [*preface, rng.choice(refusal_openers), *_some(rng, pieces["refusal_reasons"], 0, 2)]
        parts += [rng.choice(pieces["pivots"]), *_some(rng, answers, 1, 2)]
    else:  # an answer; hedged: a disclaimer first, often a caution last
        parts = [rng.choice(pieces["disclaimers"])] if kind == "hedged_answer" else []
        parts += _some(rng, answers, 1, 3 if kind == "answer" else 2)
        parts += [rng.choice(pieces["answer_closings"])] if rng.random() < 0.5 else []
    return (" " if rng.random() < 0.5 else "\n\n").join(parts)


def written_set() -> TrainingSet:
    """Everything written for safeset: short responses, composed responses, requests, word salad."""
    responses, labels = load_examples(str(default_examples()))
    responses, labels = list(responses), [int(v) for v in labels]
    short = {flag: [r for r, y in zip(responses, labels, strict=True) if y == flag] for flag in (True, False)}
    rng, pieces = random.Random(SEED), _pieces()
    for kind, count in COMPOSED.items():
        for _ in range(count):
            responses.append(compose(rng, kind, pieces, short))
            labels.append(int(kind in ("refusal", "deflection", "partial")))
    not_responses = pieces["requests"] + pieces["scenarios"]
    not_responses += [
        " ".join(rng.choices(pieces["salad_words"], k=rng.randint(3, 16))) for _ in range(SALAD)
    ]
    return TrainingSet(
        responses + not_responses,
        labels + [0] * len(not_responses),
        [False] * (len(labels) + len(not_responses)),
    )


def labelled_set(rows: list[Labelled]) -> TrainingSet:
    """Real labelled responses (refusal_validate's rows) as training data."""
    return TrainingSet([r.response for r in rows], [r.refusal for r in rows], [True] * len(rows))


def training_set(extra: str | None = None) -> TrainingSet:
    """The written set, the RBR gold set, and `extra` (response, refusal true/false) if given."""
    data = written_set() + labelled_set(load_labelled(str(data_dir() / "refusal" / "rbr_gold.jsonl")))
    if extra:
        more, more_labels = load_examples(extra)
        data += TrainingSet(list(more), [int(v) for v in more_labels], [False] * len(more))
    return data


def data_hash(responses: list[str], labels: list[int]) -> str:
    return hashlib.sha256(json.dumps([responses, labels]).encode()).hexdigest()


def fit(
    x: np.ndarray, y: np.ndarray, real: np.ndarray | None = None, regularization: float = REGULARIZATION
) -> RefusalModel:
    """Standardise, fit, and calibrate on the out-of-fold scores of the `real` rows (of every row when
    none is real); weights come back in raw units."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale

    def regression(zs: np.ndarray, ys: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=regularization, max_iter=5000).fit(zs, ys)

    out_of_fold = np.zeros(len(y))
    for train, held in StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(z, y):
        out_of_fold[held] = regression(z[train], y[train]).decision_function(z[held])
    calibrated = real if real is not None and real.any() else np.ones(len(y), dtype=bool)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(out_of_fold[calibrated, None], y[calibrated])
    final = regression(z, y)
    weights = final.coef_[0] / scale
    bias = float(final.intercept_[0] - (final.coef_[0] * mean / scale).sum())
    meta = {"embedding_model": EMBEDDING_MODEL, "phrase_features": list(PHRASE_FEATURES), "C": regularization}
    return RefusalModel(weights, bias, (float(platt.coef_[0, 0]), float(platt.intercept_[0])), meta)


def _standardised_regression(x: np.ndarray, y: np.ndarray, regularization: float):
    """L2 logistic regression on standardised `x`; (weights, biases) in raw units, one row per class
    (one row for two classes)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    fitted = LogisticRegression(C=regularization, max_iter=5000).fit((x - mean) / scale, y)
    weights = fitted.coef_ / scale
    return weights, fitted.intercept_ - (fitted.coef_ * mean / scale).sum(axis=1)


def fit_request(
    x_written: np.ndarray,
    y_written: np.ndarray,
    x_real: np.ndarray,
    related: np.ndarray,
    classes: np.ndarray,
    regularization: float = REQUEST_REGULARIZATION,
) -> RequestModel:
    """The request model: a response-only regression on the written set, then a 3-class regression over
    its decision and the request features of the real rows (`classes`: indices into REQUEST_CLASSES)."""
    base_weights, base_bias = _standardised_regression(x_written, y_written, REGULARIZATION)
    unfitted = RequestModel(base_weights[0], float(base_bias[0]), np.zeros((3, 7)), np.zeros(3))
    weights, biases = _standardised_regression(unfitted.inputs(x_real, related), classes, regularization)
    return RequestModel(base_weights[0], float(base_bias[0]), weights, biases)


def request_rows(rows: list[Labelled]) -> tuple[list[Labelled], np.ndarray, np.ndarray]:
    """The rows that have request features, those features and their classes (indices of REQUEST_CLASSES)."""
    known = [r for r in rows if r.request_features is not None]
    related = np.array([r.request_features for r in known], dtype=np.float64).reshape(len(known), -1)
    return known, related, np.array([REQUEST_CLASSES.index(r.label) for r in known])


def build(embedder, extra: str | None = None, regularization: float = REGULARIZATION) -> RefusalModel:
    data = training_set(extra)
    x = features(embedder, data.responses)
    model = fit(x, np.array(data.labels), np.array(data.real), regularization)
    real = np.array(data.real)
    gold = load_labelled(str(data_dir() / "refusal" / "rbr_gold.jsonl"))  # the real rows, in order
    rows, related, classes = request_rows(gold)
    x_rows = x[real][[r.request_features is not None for r in gold]]
    request = fit_request(x[~real], np.array(data.labels)[~real], x_rows, related, classes)
    meta = {
        **model.meta,
        "examples": len(data.labels),
        "refusals": sum(data.labels),
        "real": sum(data.real),
        "request_examples": len(rows),
        "data_sha256": data_hash(data.responses + [str(r.request_features) for r in rows], data.labels),
    }
    return RefusalModel(model.weights, model.bias, model.platt, meta, request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluators.refusal_train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default=str(default_model()), help="model file to write")
    parser.add_argument("--examples", help="more labelled responses (response, refusal true/false)")
    parser.add_argument(
        "--regularization", type=float, default=REGULARIZATION, help="C (inverse L2 strength)"
    )
    args = parser.parse_args(argv)
    from pipeline.embedder import Embedder
    from pipeline.sources import SourceError

    try:
        model = build(Embedder(), args.examples, args.regularization)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(model.to_json())
    print(f"wrote {args.out}: {model.meta['examples']} examples, {model.meta['refusals']} refusals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
