"""Encoders as plugins: the registry (torch-free, `registry`), the contract (`contract`) and its kinds.

Import `registry` for names, kinds and options (the Snakefile does); a kind's module is imported only by the
job that runs it (`registry.load_encoder`).
"""
