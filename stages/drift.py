"""DVC stage `drift`: training applicants vs application_test and the service's production log (Evidently, PSI)."""
from __future__ import annotations

import json
import logging

from scoring.data.io import replaced_directory
from scoring.monitoring import drift
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.drift")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, p = settings.paths, drift.checked(settings.drift)
    with replaced_directory(paths.drift_dir) as staging:
        report = drift.build_report(paths, p, staging)
    paths.drift_json.write_text(json.dumps(report, indent=1))
    logger.info("drift: %s", drift.summary_line(report))
    drift.log_to_mlflow(settings.tracking, p, report, [paths.drift_json, paths.drift_dir])


if __name__ == "__main__":
    main()
