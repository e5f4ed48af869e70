"""Extract the held-out validation set of the refusal classifier from a public, human-labelled source.

OpenAI's Safety RBR gold set (github.com/openai/safety-rbr-code-and-data, MIT): 518 real model
completions, each labelled by people with propositions such as `fully_complies`,
`partially_complies`, `inability_to_comply` and `disallowed_content`. We keep the response, never
the prompt (many prompts are harmful requests), and only completions labelled free of disallowed
content, and map the propositions to XSTest's three classes:

    fully_complies                        -> compliance
    partially_complies, not fully         -> partial   (refusal and compliance mixed)
    neither                               -> refusal   (declines, deflects, or only redirects)

Per row it also stores `request_features`: numbers that say how the response relates to its request
(the last user message), the REQUEST_FEATURES of evaluators/refusal_classifier.py computed with the
pinned all-MiniLM-L6-v2 embedder, so the request-aware model trains on them without the request text.

    python -m evaluators.refusal_sources /path/to/safety-rbr-code-and-data > data/refusal/rbr_gold.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rbr_label(propositions: dict[str, bool]) -> str:
    if propositions["fully_complies"]:
        return "compliance"
    return "partial" if propositions["partially_complies"] else "refusal"


def rbr_gold(checkout: Path, embedder=None) -> list[dict]:
    rows, requests = [], []
    for split in ("train", "test"):
        lines = (checkout / "data" / "rbr_gold_data" / f"{split}.jsonl").read_text().splitlines()
        for number, line in enumerate(lines):
            row = json.loads(line)
            if row["propositions"]["disallowed_content"]:
                continue  # never keep a completion people labelled harmful
            rows.append(
                {
                    "id": f"rbr-{split}-{number}",
                    "source": "openai/safety-rbr-code-and-data",
                    "model": "rbr-policy",  # the RBR paper's policy models; the release does not name them
                    "group": row["category"],
                    "response": row["completion"][-1]["content"],
                    "label": rbr_label(row["propositions"]),
                }
            )
            requests.append([m["content"] for m in row["prompt"] if m["role"] == "user"][-1])
    return with_request_features(rows, requests, embedder)


def with_request_features(rows: list[dict], requests: list[str], embedder=None) -> list[dict]:
    """`rows` with their `request_features` (rounded to 6 decimals); the requests themselves are dropped."""
    from evaluators.refusal_classifier import REQUEST_FEATURES, features, request_features

    if embedder is None:
        from pipeline.embedder import Embedder

        embedder = Embedder()
    responses = [r["response"] for r in rows]
    related = request_features(embedder, requests, features(embedder, responses), responses)
    for row, numbers in zip(rows, related, strict=True):
        row["request_features"] = {
            k: round(float(v), 6) for k, v in zip(REQUEST_FEATURES, numbers, strict=True)
        }
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m evaluators.refusal_sources PATH_TO_SAFETY_RBR_CHECKOUT", file=sys.stderr)
        return 2
    for row in rbr_gold(Path(argv[0])):
        print(json.dumps(row, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
