"""The claims a leaderboard makes, tested: each claim compares two values of one column (two models, two
strategies) on every pair of rows that agree on everything else, with the paired test of ``ascbench.stats``
and the number of seeds that would resolve the difference. Claims are listed in ``<board>/claims.toml``::

    [[claim]]
    name = "city and time context"
    key = "model"
    a = "mobileascnet"
    b = "mobileascnet-gru"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ascbench.config import read_table
from ascbench.errors import ConfigError
from ascbench.leaderboard import GROUP_KEYS, ROW_KEY, TIE_LEVEL
from ascbench.metrics import macro_accuracy
from ascbench.stats import paired_test, run_pairs, seeds_needed


# A claim compares two values of one shown column, or two settings of one row (``setting_label``: e.g. ``default``
# against ``precision=bf16``, the same model, strategy and data under another setting).
CLAIM_KEYS = [*ROW_KEY, "setting_label"]


@dataclass(frozen=True)
class Claim:
    name: str
    key: str  # the column that differs: model, strategy, semi, ...
    a: str
    b: str


def read_claims(path: Path) -> list[Claim]:
    """The claims of a board (none when it has no claims.toml)."""
    if not path.exists():
        return []
    claims = read_table(path, "claims file").get("claim", [])
    try:
        found = [Claim(c["name"], c["key"], str(c["a"]), str(c["b"])) for c in claims]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"claims file {path}: each [[claim]] needs name, key, a and b ({exc})") from None
    bad = [c.key for c in found if c.key not in CLAIM_KEYS]
    if bad:
        raise ConfigError(f"claims file {path}: key {bad[0]!r} is not a row column ({', '.join(CLAIM_KEYS)})")
    return found


def compare(table: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """One line per pair of rows that differ only in ``claim.key`` (``a`` against ``b``)."""
    if "_runs" not in table:
        return pd.DataFrame()
    # Rows agree on every shown column but the claim's, and on their setting's label (the id hashes the whole
    # config, model and strategy included, so it differs between any two rows a claim compares).
    others = [k for k in [*GROUP_KEYS, "setting_label"] if k != claim.key]
    lines = []
    for _, a in table[table[claim.key] == claim.a].iterrows():
        match = np.ones(len(table), dtype=bool)
        for k in others:
            match &= (table[k] == a[k]).to_numpy()
        for _, b in table[match & (table[claim.key] == claim.b).to_numpy()].iterrows():
            classes = 1 + max((int(max(r.true.max(), r.predicted.max())) for r in [*a["_runs"], *b["_runs"]]),
                              default=0)
            test = paired_test(a["_runs"], b["_runs"], classes)
            needed = seeds_needed(test.per_seed) if test else None
            # Each side's mean on the runs the test paired, so that the two columns subtract to the difference
            # (a row's own mean over all its seeds is in its section: 5 seeds against 3 would not).
            pairs = run_pairs(a["_runs"], b["_runs"])[0] if test else []
            mean_a, mean_b = ((np.mean([macro_accuracy(x.true, x.predicted) for x, _ in pairs]),
                               np.mean([macro_accuracy(y.true, y.predicted) for _, y in pairs]))
                              if pairs else (a["macro_accuracy"], b["macro_accuracy"]))
            lines.append({
                "dataset": a["dataset"], "protocol": a["protocol"],
                **{k: a[k] for k in ("model", "strategy", "semi") if k != claim.key},
                f"{claim.a} %": round(100 * mean_a, 1), f"{claim.b} %": round(100 * mean_b, 1),
                "difference (points)": round(100 * test.difference, 1) if test else np.nan,
                "p": ("< 0.001" if test.p_value < 0.001 else f"{test.p_value:.2g}") if test else "untested",
                "seeds paired": test.seeds if test else 0,
                "seeds needed": ("-" if needed is None else f"> {needed - 1}" if needed > 200 else str(needed)),
                "verdict": _verdict(test, claim),
            })
    return pd.DataFrame(lines)


def _verdict(test, claim: Claim) -> str:
    """"unresolved", or which of the compared values did better (by its name: every rendering shows this)."""
    if test is None:
        return "untested (no runs on the same test clips)"
    if test.p_value >= TIE_LEVEL:
        return "unresolved"
    return f"{claim.a if test.difference > 0 else claim.b} better"


CLAIMS_INTRO = ("Each line pairs two rows that differ only in the named column, on the same seeds and test clips: "
                "each row's mean macro accuracy on the paired seeds (its mean over all its seeds is in its section), "
                "the mean difference, the paired randomisation test's p-value, and how many seeds a paired t-test "
                "over seeds would need to resolve a difference of that size with 80 % power (from the seed-to-seed "
                "spread seen here, on this test side). Many comparisons are tested at p < 0.05 with no correction: "
                "expect about one in twenty unresolved-in-truth pairs to read as resolved.")


def claims_title(table: pd.DataFrame) -> str:
    """The claims' heading, naming the data they are on and what kind of audio it is."""
    from ascbench.board_table import dataset_kind

    names = sorted(set(table["dataset"])) if not table.empty else []
    return "Claims" + (" on " + ", ".join(f"{n} ({dataset_kind(n)})" for n in names) if names else "")


def render_claims(table: pd.DataFrame, claims: list[Claim], board_dir: Path | None = None) -> str:
    """The claims section of leaderboard.md: its data, then per claim its comparisons as a table."""
    if not claims:
        return ""
    from ascbench.board_table import data_header, narrow_tables, wrap

    parts = [f"\n## {claims_title(table)}\n\n" + wrap(CLAIMS_INTRO) + "\n" + data_header(table, board_dir, markdown=True)]
    for claim in claims:
        lines = compare(table, claim)
        body = ("\n\n".join(narrow_tables(lines.assign(**{"#": range(1, len(lines) + 1)})[["#", *lines.columns]]))
                if len(lines) else "no pair of rows to compare")
        parts.append(f"\n### {claim.name}: {claim.key} {claim.a} vs {claim.b}\n\n{body}\n")
    return "".join(parts)
