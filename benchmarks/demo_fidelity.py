"""Does the demo's Table 1 survive reduced-precision video features? Two demo runs, side by side.

Reads results/table1.csv of a float32 run (`--fp32`, e.g. `benchmarks/demo.py --configfile
benchmarks/fp32.yaml --workdir DIR`) and of a reduced-precision run (`--reduced`, the default config's
`features.precision: auto`, bf16 on a CPU with AVX512-BF16) and writes, per configuration and direction, both
median ranks, the float32 run's 95% interval, whether the reduced run's median rank lies inside it, and each
configuration's place in the ordering by median rank in both runs. The fidelity bar: every median rank
inside the float32 interval.

    .venv/bin/python benchmarks/demo_fidelity.py --fp32 DIR --reduced DIR [--out results/benchmarks/demo_fidelity.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mvcl.io import save_csv

DIRECTIONS = ("a2v", "v2a")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fp32", type=Path, required=True, help="workdir of the float32 demo run")
    parser.add_argument("--reduced", type=Path, required=True, help="workdir of the bf16 (auto) demo run")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/demo_fidelity.csv"))
    return parser.parse_args()


def compare(fp32: pd.DataFrame, reduced: pd.DataFrame) -> pd.DataFrame:
    """One row per (configuration, direction) of the trained configurations both tables list."""
    rows = []
    names = [name for name in fp32["configuration"] if name in set(reduced["configuration"]) and name != "chance"]
    full, half = (table.set_index("configuration").loc[names] for table in (fp32, reduced))
    for direction in DIRECTIONS:
        column = f"median_rank_{direction}"
        place_full = full[column].rank(method="min")
        place_half = half[column].rank(method="min")
        for name in names:
            low, high = full.at[name, f"{column}_ci_low"], full.at[name, f"{column}_ci_high"]
            value = half.at[name, column]
            rows.append(
                {
                    "configuration": name,
                    "direction": direction,
                    "median_rank_fp32": full.at[name, column],
                    "ci_low_fp32": low,
                    "ci_high_fp32": high,
                    "median_rank_reduced": value,
                    "inside_fp32_interval": bool(low <= value <= high),
                    "place_fp32": int(place_full[name]),
                    "place_reduced": int(place_half[name]),
                    "n_test_videos": int(full.at[name, "n_test_videos"]),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    args = parse_args()
    tables = [pd.read_csv(folder / "results" / "table1.csv") for folder in (args.fp32, args.reduced)]
    table = compare(*tables)
    save_csv(args.out, table)
    print(table.to_string(index=False))
    inside = table["inside_fp32_interval"]
    same = (table["place_fp32"] == table["place_reduced"]).groupby(table["direction"]).all()
    print(f"{inside.sum()} of {len(table)} median ranks inside the float32 run's 95% interval")
    print("ordering by median rank unchanged:", same.to_dict())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
