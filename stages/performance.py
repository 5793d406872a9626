"""DVC stage `performance`: repayment outcomes joined to the production log, realised performance and a verdict.

reports/performance.json holds `verdict` (stable | degraded | retrain_recommended | insufficient_outcomes) for a
script to gate on, e.g. `jq -e '.verdict != "retrain_recommended"' reports/performance.json`.
"""
from __future__ import annotations

import json
import logging

from scoring.data.io import replaced_directory
from scoring.monitoring import performance
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.performance")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, p = settings.paths, settings.performance
    metrics = json.loads(paths.metrics_json.read_text()) if paths.metrics_json.exists() else {}
    outcomes = performance.read_outcomes(paths.outcomes)
    scores = performance.last_scores(paths.production)
    frame = performance.joined(scores, outcomes.frame, p.period)
    counts = {"outcome_files": outcomes.files, "outcome_rows_left_out": outcomes.bad_rows,
              "outcomes": len(outcomes.frame), "scored_applicants": len(scores), "joined": len(frame)}
    report = performance.build_report(frame, metrics, settings.cost, p, counts)
    with replaced_directory(paths.performance_dir) as staging:
        performance.period_figure(report, staging / paths.performance_png.name)
        if report["overall"].get("auc") is not None:
            performance.classification_html(frame, float(metrics.get("threshold", 0.5)),
                                            staging / paths.classification_html.name)
    paths.performance_json.write_text(json.dumps(report, indent=1))
    logger.info("performance: %s (%d outcome(s), %d joined to the production log)%s", report["verdict"],
                len(outcomes.frame), len(frame), f": {'; '.join(report['reasons'])}" if report["reasons"] else "")


if __name__ == "__main__":
    main()
