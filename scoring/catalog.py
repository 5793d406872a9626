"""The reason catalogue: every feature the model can use, with a label, a family, a unit and a reason code.

One catalogue for the service, batch scoring, the app and the deck. Raw application fields take their labels from
Kaggle's column documentation (HomeCredit_columns_description.csv, shortened by hand into
scoring/resources/feature_labels.csv); engineered features (`features.application_columns`) and history aggregates
(`features.history_features`) are labelled in the same file. The 47 building statistics and the document flags of
the contract follow one rule each (below), so the file stays readable.

A family groups related features into one reason (the EXT_SOURCE scores and their summaries are one reason, not
six); its code (R01, R02, ...) is stable: a code is never renumbered or reused, so an adverse-action letter written
today means the same next year. A new feature without a row makes `entry` raise and tests/unit/test_catalog.py fail.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from scoring import contract

RESOURCE = Path(__file__).with_name("resources") / "feature_labels.csv"

FAMILIES: dict[str, tuple[str, str]] = {
    "EXTERNAL": ("R01", "External credit scores"),
    "EMPLOYMENT": ("R02", "Employment"),
    "AGE": ("R03", "Age"),
    "INCOME": ("R04", "Income"),
    "LOAN": ("R05", "Loan requested"),
    "REPAYMENT": ("R06", "Repayment burden"),
    "HOUSEHOLD": ("R07", "Household and family"),
    "EDUCATION": ("R08", "Education"),
    "HOUSING": ("R09", "Housing"),
    "ASSETS": ("R10", "Assets (car, home)"),
    "REGION": ("R11", "Region and addresses"),
    "CONTACT": ("R12", "Contact details"),
    "IDENTITY": ("R13", "Registration and identity document"),
    "DOCUMENTS": ("R14", "Documents provided"),
    "APPLICATION": ("R15", "When the application was made"),
    "SOCIAL": ("R16", "Arrears in the social circle"),
    "ENQUIRIES": ("R17", "Recent credit bureau enquiries"),
    "BUREAU_CREDITS": ("R18", "Credits at other lenders"),
    "BUREAU_LATE": ("R19", "Late payments at other lenders"),
    "PREVIOUS": ("R20", "Previous applications at Home Credit"),
    "PREVIOUS_REFUSALS": ("R21", "Previous refusals at Home Credit"),
    "POS": ("R22", "Point-of-sale and cash loans"),
    "INSTALMENTS": ("R23", "Instalment payments"),
    "INSTALMENTS_LATE": ("R24", "Late or unpaid instalments"),
    "CARD": ("R25", "Credit card use"),
    "COVERAGE": ("R26", "Credit history on file"),
    "GENDER": ("R27", "Gender"),
}
"""Family -> (reason code, title). Append new families with the next code; never renumber."""

UNITS = frozenset({"score", "amount", "ratio", "share", "count", "years_ago", "months_ago", "days", "years", "hour",
                   "flag", "category", "number"})
"""score: 0 to 1; share: 0 to 1 shown as %; years_ago/months_ago: Kaggle's negative day or month counts, shown as
a positive duration; days: a positive day count."""

BUILDING_WORDS = {
    "APARTMENTS": "apartments", "BASEMENTAREA": "basement area", "YEARS_BEGINEXPLUATATION": "years in use",
    "YEARS_BUILD": "age", "COMMONAREA": "common area", "ELEVATORS": "elevators", "ENTRANCES": "entrances",
    "FLOORSMAX": "highest floor", "FLOORSMIN": "lowest floor", "LANDAREA": "land area",
    "LIVINGAPARTMENTS": "living apartments", "LIVINGAREA": "living area", "NONLIVINGAPARTMENTS": "other apartments",
    "NONLIVINGAREA": "other area"}
STATISTIC_WORDS = {"AVG": "average", "MODE": "mode", "MEDI": "median"}


@dataclass(frozen=True)
class Entry:
    """One feature: `label` names it; `text`, when given, is how a reason states it ({value}, {qual})."""

    feature: str
    family: str
    unit: str
    label: str
    text: str = ""

    @property
    def code(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def family_title(self) -> str:
        return FAMILIES[self.family][1]


def _by_rule() -> dict[str, Entry]:
    """The contract's building statistics and document flags, labelled by rule."""
    out = {}
    for name in contract.BUILDING_COLUMNS:
        stat, statistic = name.rsplit("_", 1)
        out[name] = Entry(name, "HOUSING", "score",
                          f"Building: {BUILDING_WORDS[stat]} ({STATISTIC_WORDS[statistic]}, normalised)")
    for name in contract.table("application_train").names:
        if name.startswith("FLAG_DOCUMENT_"):
            out[name] = Entry(name, "DOCUMENTS", "flag", f"Provided document {name.rsplit('_', 1)[1]}")
    return out


def _checked(row: dict[str, str], line: int) -> Entry:
    entry = Entry(row["feature"], row["family"], row["unit"], row["label"], row.get("text") or "")
    if entry.family not in FAMILIES:
        raise ValueError(f"{RESOURCE.name} line {line}: family {entry.family!r} of {entry.feature} is not one of "
                         f"catalog.FAMILIES ({', '.join(FAMILIES)}): add it there with the next code")
    if entry.unit not in UNITS:
        raise ValueError(f"{RESOURCE.name} line {line}: unit {entry.unit!r} of {entry.feature} is not one of "
                         f"{sorted(UNITS)}")
    return entry


@cache
def catalogue() -> dict[str, Entry]:
    """Every labelled feature, by name."""
    with RESOURCE.open(newline="", encoding="utf-8") as handle:
        rows = [_checked(row, line) for line, row in enumerate(csv.DictReader(handle), start=2)]
    return {**_by_rule(), **{entry.feature: entry for entry in rows}}


def entry(feature: str) -> Entry:
    try:
        return catalogue()[feature]
    except KeyError:
        raise KeyError(f"feature {feature!r} has no label: add a row (feature,family,unit,label,text) to "
                       f"{RESOURCE}") from None


def unlabelled(features: list[str]) -> list[str]:
    return [name for name in features if name not in catalogue()]


def label(feature: str) -> str:
    """The feature's label; the name itself for a feature the catalogue does not know (never raises)."""
    found = catalogue().get(feature)
    return found.label if found else feature


@dataclass(frozen=True)
class Grouping:
    """How the fields of a model group into reasons: `matrix` (fields x families, 0/1) sums SHAP values by family."""

    families: list[str]
    matrix: np.ndarray
    family_of: np.ndarray   # per field, its family's position in `families`

    @property
    def codes(self) -> list[str]:
        return [FAMILIES[f][0] if f in FAMILIES else f for f in self.families]


def grouping(fields: list[str]) -> Grouping:
    """The fields' families, in order of first appearance; a field the catalogue lacks is a family of its own."""
    family = [catalogue()[f].family if f in catalogue() else f for f in fields]
    families = list(dict.fromkeys(family))
    family_of = np.array([families.index(f) for f in family], dtype=np.int64)
    matrix = np.zeros((len(fields), len(families)))
    matrix[np.arange(len(fields)), family_of] = 1.0
    return Grouping(families, matrix, family_of)
