"""Figures of the workflow; each module draws one kind of figure with matplotlib (Agg, no display needed)."""

import matplotlib

matplotlib.use("Agg")
