"""The `lexical-diversity` package as a test oracle, importable on any setuptools.

Its `lex_div` module calls `pkg_resources.resource_filename` once, at import, to find its lemma
table; setuptools 81 and later no longer ship `pkg_resources`. Where it is missing, a stand-in that
answers that one call is put in place while the module is imported, and removed again.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib import resources


def _import_lex_div() -> types.ModuleType:
    if importlib.util.find_spec("pkg_resources") is not None:
        from lexical_diversity import lex_div

        return lex_div
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(resources.files(package) / name)  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        from lexical_diversity import lex_div
    finally:
        del sys.modules["pkg_resources"]
    return lex_div


lex_div = _import_lex_div()
