"""DVC stage `drift`: training applicants vs application_test and the service's production log (Evidently, PSI)."""
from __future__ import annotations

import json
import logging

from scoring.config import configure_logging, load_params
from scoring.data.io import replaced_directory
from scoring.model.tracking import TrackingParams
from scoring.monitoring import drift

logger = logging.getLogger("stages.drift")


def main() -> None:
    configure_logging()
    params = load_params()
    paths, p = drift.drift_paths(params), drift.drift_params(params.get("drift"))
    out_dir, json_path = paths.reports / "drift", paths.reports / "drift.json"
    with replaced_directory(out_dir) as staging:
        report = drift.build_report(paths, p, staging)
    json_path.write_text(json.dumps(report, indent=1))
    logger.info("drift: %s", drift.summary_line(report))
    drift.log_to_mlflow(TrackingParams(**params.get("tracking", {})), p, report, [json_path, out_dir])


if __name__ == "__main__":
    main()
