"""The wheel carries the code, the prompts and the taxonomies, and finds them once installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_every_package_prompt_and_taxonomy(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("safeset-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code_dirs = {
        str(p.parent.relative_to(REPO))
        for top in ("pipeline", "personas", "evaluators")
        for p in (REPO / top).rglob("*.py")
    }
    shipped_dirs = {str(Path(n).parent) for n in names if n.endswith(".py")}
    assert code_dirs <= shipped_dirs, f"packages missing from pyproject: {sorted(code_dirs - shipped_dirs)}"
    prompts = {Path(p).name for p in (REPO / "prompts").glob("*.yaml")}
    assert {Path(n).name for n in names if n.startswith("pipeline/_prompts/")} == prompts
    assert "pipeline/_data/taxonomy/hazards.yaml" in names
    ui = {f"pipeline/serve/ui/{p.name}" for p in (REPO / "pipeline" / "serve" / "ui").iterdir()}
    assert ui and ui <= set(names), f"web UI files missing from the wheel: {sorted(ui - set(names))}"
    assert not [n for n in names if ".duckdb" in n]

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from pipeline.prompts import load_prompt; from pipeline.taxonomy import hazard_categories;"
        "from pipeline.resources import prompts_dir; print(prompts_dir());"
        "print(load_prompt('scenario').ref, len(hazard_categories()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[0] == str(site / "pipeline" / "_prompts")
    assert out[1] == "scenario@2 14"
