"""The study's qualitative analysis: nearest neighbours of seed videos and segments, and embedding diagnostics."""
