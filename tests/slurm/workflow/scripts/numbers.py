"""Write the numbers 0..99 and record where the job ran."""

# ruff: noqa: F821  (Snakemake defines `snakemake` when it runs this script)

import json
import os
import sys

with open(snakemake.log[0], "w") as log:
    print(f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '')}", file=log)
    print(f"python={sys.executable}", file=log)

with open(snakemake.output[0], "w") as out:
    json.dump(list(range(100)), out)
