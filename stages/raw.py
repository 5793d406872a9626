"""DVC stage `raw`: the raw data folder (paths.raw, Kaggle's files for `data.source: kaggle`) as a DVC-versioned
output.

The command only makes sure the folder exists (a fresh clone has none: git cannot hold an empty folder) and lists
what it holds. What versions the files is the stage's output, `persist: true` in dvc.yaml: DVC never deletes it
before a run, and every `dvc repro` or `dvc exp run` whose raw files changed reruns this stage and records their
hash in dvc.lock (the files in DVC's cache), so each experiment names the raw files it used and `dvc exp apply`
brings those very files back. (A `dvc add`ed data/raw.dvc would need the folder to exist before DVC runs anything.)
"""
from __future__ import annotations

import logging

from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.raw")


def main() -> None:
    configure_logging()
    raw = load_settings().paths.raw
    raw.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in raw.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    logger.info("%s: %d file(s), %.1f MB%s", raw, len(files), size / 1e6,
                f" ({', '.join(p.name for p in files[:10])})" if files else ", empty (data.source: synthetic)")


if __name__ == "__main__":
    main()
