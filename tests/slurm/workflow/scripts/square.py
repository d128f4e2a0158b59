"""Square this shard's share of the numbers and record where the job ran and which GPUs it was given."""

# ruff: noqa: F821  (Snakemake defines `snakemake` when it runs this script)

import json
import os
import sys

shard = int(snakemake.wildcards.shard)
shards = int(snakemake.config.get("shards", 2))

with open(snakemake.log[0], "w") as log:
    print(f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '')}", file=log)
    print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}", file=log)
    print(f"python={sys.executable}", file=log)

with open(snakemake.input[0]) as numbers_file:
    numbers = json.load(numbers_file)
with open(snakemake.output[0], "w") as out:
    json.dump([n * n for n in numbers[shard::shards]], out)
