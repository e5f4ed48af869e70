"""safeset: LLM safety-alignment dataset generation with lineage in DuckDB."""

from pipeline.torch_variants import hide_mismatched_extensions

__version__ = "0.1.0"

hide_mismatched_extensions()
