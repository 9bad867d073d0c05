"""Add the metadata ceiling to published records made before runs recorded it.

For each record in ``leaderboards/results/``: rebuild its split from its stored config with today's
code, check that it is the split the run used (its ``split_fingerprint``; records older than the
fingerprint are checked by their test-clip count and test cities), and add ``metadata_ceiling`` (row
and metrics) and the split's ``group_by`` and ``excluded_classes``. Model numbers are not touched. A
record whose split no longer matches stops the script with its name: such a row must be re-run, not
patched.

    python leaderboards/tools/add_metadata_ceiling.py leaderboards/
    ascbench leaderboard --check leaderboards/   # then regenerate: python -c "from ascbench.publish import publish; ..."
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.fileio import atomic_write_text
from ascbench.registry import get_registry
from ascbench.split_plan import plan_split


def main(publish_dir: Path) -> int:
    registry = get_registry()
    datasets: dict[str, object] = {}
    files = sorted((publish_dir / "results").glob("*.json"))
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        config = RunConfig.from_stored(record["config"])
        if config.dataset not in datasets:
            root = Path(config.data_root) if config.data_root else None
            datasets[config.dataset] = registry.dataset(config.dataset).load(DatasetOptions(data_root=root))
        plan = plan_split(datasets[config.dataset], config, registry)
        metrics = record["metrics"]
        if "split_fingerprint" in metrics:
            same = metrics["split_fingerprint"] == plan.fingerprint()
        else:
            same = (metrics["num_clips"] == len(plan.partition.test)
                    and metrics["split"]["test_cities"] == plan.split.info["test_cities"])
        if not same:
            print(f"{path.name}: its split differs from today's; re-run it instead", file=sys.stderr)
            return 1
        metrics["metadata_ceiling"] = plan.ceiling
        metrics["split"]["group_by"] = plan.split.info["group_by"]
        metrics["split"]["excluded_classes"] = plan.split.info["excluded_classes"]
        record["row"]["metadata_ceiling"] = plan.ceiling["best"]
        record["row"]["group_by"] = plan.split.info["group_by"]
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{len(files)} records: splits verified, metadata ceiling added")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "leaderboards")))
