"""Personas: the people TRIDENT's instructions are written as. The persona model and its records
(model, records), expansion into related personas (expansion), the pool and its pairing with intent
domains (pool, sampling). The persona stages in pipeline/stages/ call these."""
