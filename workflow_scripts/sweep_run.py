"""Rule sweep_run: the workflow itself, up to retrieval of each sweep configuration, at one demo.av_coupling."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mvcl.logs import log_to

log = log_to(snakemake.log[0])
workdir = Path(snakemake.params.workdir)
workdir.mkdir(parents=True, exist_ok=True)
(workdir / "config.yaml").write_text(yaml.safe_dump(snakemake.params.config, sort_keys=False))
targets = [f"results/metrics/{name}/retrieval.json" for name in snakemake.params.configurations]
command = [
    sys.executable,
    "-m",
    "snakemake",
    "-s",
    str(snakemake.params.snakefile),
    "--directory",
    str(workdir),
    "--cores",
    str(snakemake.threads),
    "--rerun-incomplete",
    *targets,
]
log.info("running %s", " ".join(command))
completed = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.STDOUT, check=False)
if completed.returncode != 0:
    raise SystemExit(f"the sweep run in {workdir} failed (exit {completed.returncode}); see this log")
for target, output in zip(targets, snakemake.output.retrieval, strict=True):
    shutil.copyfile(workdir / target, output)
