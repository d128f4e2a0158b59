"""The synthetic demo corpus: generated music videos, their re-encodes, and simulated annotators."""
