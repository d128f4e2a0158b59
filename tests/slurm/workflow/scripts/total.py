"""Sum the squares of every shard."""

# ruff: noqa: F821  (Snakemake defines `snakemake` when it runs this script)

import json
import os
import sys

with open(snakemake.log[0], "w") as log:
    print(f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '')}", file=log)
    print(f"python={sys.executable}", file=log)

squares = []
for path in snakemake.input:
    with open(path) as shard_file:
        squares.extend(json.load(shard_file))
with open(snakemake.output[0], "w") as out:
    json.dump({"count": len(squares), "sum": sum(squares)}, out)
