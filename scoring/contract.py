"""The data contract: the one description of the seven Home Credit tables.

Every rule about the data lives here: column names and order, storage types, nullability, ranges, categories and
keys. The Great Expectations suites (`scoring.data.validation`), the generator's schema (`scoring.synthetic.generator`),
the API request schema (`scoring.serving.request_schema`) and the app's form are all derived from it. Rules are domain
facts that hold on Kaggle's full files (amounts of a loan are never negative, days are counted backwards from the
application, ...), not the extremes of a sample, so that the real data passes them.

Besides those domain rules every number has plausibility bounds, so that absurd values (an income of 1e15, 2^70
children) are refused by the API, the suites and the form alike. They are derived numbers, written into `BOUNDS`
below by `tools/envelopes.py` from the envelopes of Kaggle's real rows and published full-file extremes, with the
margin rule written beside the table. A bound is an `error` like any range: by construction Kaggle's own full files
lie well inside it, so a value beyond it is corrupt input (an overflow, a unit error), not an unusual applicant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal["key", "int", "float", "category", "flag"]
Severity = Literal["error", "warn"]

DAYS_SENTINEL = 365243
"""Kaggle's 'not applicable' value for day counts (pensioners' DAYS_EMPLOYED, never-drawn previous credits)."""
YEAR_DAYS = 366
MAX_SPAN_YEARS = 100
"""The longest time span an application can hold: the oldest applicant's age (DAYS_BIRTH >= -100 years)."""
KEY_MAX = 2**53 - 1
"""Largest identifier: keys travel as float64 (pandas' nullable integers, JSON numbers) and are exact up to 2^53."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    sentinel: float | None = None
    severity: Severity = "error"
    integral: bool = False
    """Whole numbers in a float column (Kaggle stores counts and day counts with missing values as floats)."""

    @property
    def is_numeric(self) -> bool:
        return self.kind != "category"

    @property
    def whole(self) -> bool:
        """Whether every value must be a whole number: keys, integers, flags and the integral float columns."""
        return self.kind in ("key", "int", "flag") or self.integral

    def range_text(self) -> str:
        """The range rule in words ('must be between 0 and 50'), with the 'not applicable' value if any."""
        if self.min is not None and self.max is not None:
            text = f"must be between {number(self.min)} and {number(self.max)}"
        elif self.min is not None or self.max is not None:
            text = f"must be >= {number(self.min)}" if self.min is not None else f"must be <= {number(self.max)}"
        else:
            return ""
        return text if self.sentinel is None else f"{text} (or {number(self.sentinel)}, 'not applicable')"

    def rule_broken(self, value: float) -> str | None:
        """The rule a number breaks, in words, or None: finite, within the range (or the sentinel), whole if whole.

        Whole means `value == int(value)`: a tolerance-based test (pydantic's `multiple_of=1`) lets 2.59e-42 through.
        """
        try:
            if not math.isfinite(value):
                return "must be a finite number (no NaN or infinity)"
        except OverflowError:  # an integer beyond any float (10**400)
            return self.range_text()
        if self.sentinel is not None and value == self.sentinel:
            return None
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            return self.range_text()
        if self.whole and value != int(value):
            return "must be a whole number"
        return None


def number(value: float) -> str:
    """A bound as people write it: 500000000, -36600, 0.5 (never 5e+08)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    parents: dict[str, str] = field(default_factory=dict)
    """Foreign keys: column -> parent table. Orphans are reported, not rejected (Kaggle's own files have them)."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name!r}")


# ---- category sets of Kaggle's full files -------------------------------------------------------------------------
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
YES_NO = ("Y", "N")
TYPE_SUITE = ("Unaccompanied", "Family", "Spouse, partner", "Children", "Other_A", "Other_B", "Group of people")
ORGANIZATION_TYPES = (
    "Business Entity Type 1", "Business Entity Type 2", "Business Entity Type 3", "XNA", "Self-employed", "Other",
    "Medicine", "Government", "School", "Kindergarten", "Construction", "Security", "Housing", "Military", "Bank",
    "Agriculture", "Police", "Postal", "Security Ministries", "Restaurant", "Services", "University", "Hotel",
    "Electricity", "Insurance", "Telecom", "Emergency", "Advertising", "Realtor", "Culture", "Mobile",
    "Legal Services", "Cleaning", "Religion",
    *(f"Trade: type {i}" for i in range(1, 8)),
    *(f"Transport: type {i}" for i in range(1, 5)),
    *(f"Industry: type {i}" for i in range(1, 14)),
)
OCCUPATIONS = (
    "Laborers", "Sales staff", "Core staff", "Managers", "Drivers", "High skill tech staff", "Accountants",
    "Medicine staff", "Security staff", "Cooking staff", "Cleaning staff", "Private service staff",
    "Low-skill Laborers", "Waiters/barmen staff", "Secretaries", "Realty agents", "HR staff", "IT staff",
)
APPLICATION_CATEGORIES: dict[str, tuple[str, ...]] = {
    "NAME_CONTRACT_TYPE": ("Cash loans", "Revolving loans"),
    "CODE_GENDER": ("F", "M", "XNA"),
    "FLAG_OWN_CAR": YES_NO,
    "FLAG_OWN_REALTY": YES_NO,
    "NAME_TYPE_SUITE": TYPE_SUITE,
    "NAME_INCOME_TYPE": ("Working", "Commercial associate", "Pensioner", "State servant", "Unemployed", "Student",
                         "Businessman", "Maternity leave"),
    "NAME_EDUCATION_TYPE": ("Secondary / secondary special", "Higher education", "Incomplete higher",
                            "Lower secondary", "Academic degree"),
    "NAME_FAMILY_STATUS": ("Married", "Single / not married", "Civil marriage", "Separated", "Widow", "Unknown"),
    "NAME_HOUSING_TYPE": ("House / apartment", "With parents", "Municipal apartment", "Rented apartment",
                          "Office apartment", "Co-op apartment"),
    "OCCUPATION_TYPE": OCCUPATIONS,
    "WEEKDAY_APPR_PROCESS_START": WEEKDAYS,
    "ORGANIZATION_TYPE": ORGANIZATION_TYPES,
    "FONDKAPREMONT_MODE": ("reg oper account", "reg oper spec account", "org spec account", "not specified"),
    "HOUSETYPE_MODE": ("block of flats", "specific housing", "terraced house"),
    "WALLSMATERIAL_MODE": ("Panel", "Stone, brick", "Block", "Wooden", "Mixed", "Monolithic", "Others"),
    "EMERGENCYSTATE_MODE": ("No", "Yes"),
}
BUILDING_STATS = (
    "APARTMENTS", "BASEMENTAREA", "YEARS_BEGINEXPLUATATION", "YEARS_BUILD", "COMMONAREA", "ELEVATORS", "ENTRANCES",
    "FLOORSMAX", "FLOORSMIN", "LANDAREA", "LIVINGAPARTMENTS", "LIVINGAREA", "NONLIVINGAPARTMENTS", "NONLIVINGAREA",
)
BUILDING_COLUMNS = tuple(f"{s}_{agg}" for agg in ("AVG", "MODE", "MEDI") for s in BUILDING_STATS)

APPLICATION_ORDER = (
    "SK_ID_CURR TARGET NAME_CONTRACT_TYPE CODE_GENDER FLAG_OWN_CAR FLAG_OWN_REALTY CNT_CHILDREN AMT_INCOME_TOTAL "
    "AMT_CREDIT AMT_ANNUITY AMT_GOODS_PRICE NAME_TYPE_SUITE NAME_INCOME_TYPE NAME_EDUCATION_TYPE NAME_FAMILY_STATUS "
    "NAME_HOUSING_TYPE REGION_POPULATION_RELATIVE DAYS_BIRTH DAYS_EMPLOYED DAYS_REGISTRATION DAYS_ID_PUBLISH "
    "OWN_CAR_AGE FLAG_MOBIL FLAG_EMP_PHONE FLAG_WORK_PHONE FLAG_CONT_MOBILE FLAG_PHONE FLAG_EMAIL OCCUPATION_TYPE "
    "CNT_FAM_MEMBERS REGION_RATING_CLIENT REGION_RATING_CLIENT_W_CITY WEEKDAY_APPR_PROCESS_START "
    "HOUR_APPR_PROCESS_START REG_REGION_NOT_LIVE_REGION REG_REGION_NOT_WORK_REGION LIVE_REGION_NOT_WORK_REGION "
    "REG_CITY_NOT_LIVE_CITY REG_CITY_NOT_WORK_CITY LIVE_CITY_NOT_WORK_CITY ORGANIZATION_TYPE EXT_SOURCE_1 "
    "EXT_SOURCE_2 EXT_SOURCE_3"
).split() + list(BUILDING_COLUMNS) + (
    "FONDKAPREMONT_MODE HOUSETYPE_MODE TOTALAREA_MODE WALLSMATERIAL_MODE EMERGENCYSTATE_MODE "
    "OBS_30_CNT_SOCIAL_CIRCLE DEF_30_CNT_SOCIAL_CIRCLE OBS_60_CNT_SOCIAL_CIRCLE DEF_60_CNT_SOCIAL_CIRCLE "
    "DAYS_LAST_PHONE_CHANGE"
).split() + [f"FLAG_DOCUMENT_{i}" for i in range(2, 22)] + [
    f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")
]
APPLICATION_NOT_NULL = {
    "SK_ID_CURR", "TARGET", "NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "CNT_CHILDREN",
    "AMT_INCOME_TOTAL", "AMT_CREDIT", "NAME_INCOME_TYPE", "NAME_EDUCATION_TYPE", "NAME_FAMILY_STATUS",
    "NAME_HOUSING_TYPE", "REGION_POPULATION_RELATIVE", "DAYS_BIRTH", "DAYS_EMPLOYED", "DAYS_REGISTRATION",
    "DAYS_ID_PUBLISH", "WEEKDAY_APPR_PROCESS_START", "HOUR_APPR_PROCESS_START", "ORGANIZATION_TYPE",
}
INT_COLUMNS = {
    "CNT_CHILDREN", "DAYS_BIRTH", "DAYS_EMPLOYED", "DAYS_ID_PUBLISH", "REGION_RATING_CLIENT",
    "REGION_RATING_CLIENT_W_CITY", "HOUR_APPR_PROCESS_START",
}
INTEGRAL_FLOAT_COLUMNS = {
    "DAYS_REGISTRATION", "DAYS_LAST_PHONE_CHANGE", "OWN_CAR_AGE", "CNT_FAM_MEMBERS",
    *(f"{kind}_{days}_CNT_SOCIAL_CIRCLE" for kind in ("OBS", "DEF") for days in (30, 60)),
    *(f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")),
}
"""Float columns of whole numbers (day counts, years, counts): every value of Kaggle's real rows is whole."""


def application_column(name: str) -> Column:
    """Domain rule of one application column, from its name family (Kaggle's naming is systematic).

    The open side of a range (amounts and counts have no natural maximum, days counted backwards no minimum) is closed
    by the plausibility bounds of `BOUNDS`; `TABLES` holds the columns with both.
    """
    nullable = name not in APPLICATION_NOT_NULL
    kind: Kind = "int" if name in INT_COLUMNS else "float"
    integral = name in INTEGRAL_FLOAT_COLUMNS
    if name == "SK_ID_CURR":
        return Column(name, "key", nullable=False, min=1, max=KEY_MAX)
    if name in APPLICATION_CATEGORIES:
        return Column(name, "category", nullable, categories=APPLICATION_CATEGORIES[name])
    if name == "TARGET" or name.startswith(("FLAG_", "REG_", "LIVE_")):
        return Column(name, "flag", nullable, min=0, max=1)
    if name == "DAYS_EMPLOYED":
        return Column(name, "int", nullable, max=0, sentinel=DAYS_SENTINEL)
    if name == "DAYS_BIRTH":  # applicants are 14 to 100 years old
        return Column(name, "int", nullable, min=-YEAR_DAYS * MAX_SPAN_YEARS, max=-YEAR_DAYS * 14)
    if name.startswith("DAYS_"):
        return Column(name, kind, nullable, max=0, integral=integral)
    if name.startswith("EXT_SOURCE_") or name in BUILDING_COLUMNS or name in (
        "TOTALAREA_MODE", "REGION_POPULATION_RELATIVE"
    ):
        return Column(name, "float", nullable, min=0, max=1)
    if name.startswith("REGION_RATING"):  # Kaggle's application_test has one -1 in REGION_RATING_CLIENT_W_CITY
        return Column(name, "int", nullable, min=1, max=3, sentinel=-1)
    if name == "HOUR_APPR_PROCESS_START":
        return Column(name, "int", nullable, min=0, max=23)
    if name == "CNT_FAM_MEMBERS":
        return Column(name, "float", nullable, min=1, integral=True)
    return Column(name, kind, nullable, min=0, integral=integral)  # AMT_*, CNT_*, OWN_CAR_AGE, social, bureau requests


def _table(name: str, specs: list[Column], primary_key: str | None, parents: dict[str, str]) -> Table:
    return Table(name, tuple(specs), primary_key, parents)


def _num(name: str, kind: Kind = "float", nullable: bool = True, **rule: float) -> Column:
    return Column(name, kind, nullable, **rule)


def _cat(name: str, categories: tuple[str, ...], nullable: bool = False, severity: Severity = "error") -> Column:
    return Column(name, "category", nullable, categories=categories, severity=severity)


def _key(name: str) -> Column:
    return Column(name, "key", nullable=False, min=1, max=KEY_MAX)


_APPLICATION_TRAIN = _table("application_train", [application_column(n) for n in APPLICATION_ORDER], "SK_ID_CURR", {})
_APPLICATION_TEST = _table(
    "application_test", [application_column(n) for n in APPLICATION_ORDER if n != "TARGET"], "SK_ID_CURR", {}
)
_BUREAU = _table("bureau", [
    _key("SK_ID_CURR"), _key("SK_ID_BUREAU"),
    _cat("CREDIT_ACTIVE", ("Closed", "Active", "Sold", "Bad debt")),
    _cat("CREDIT_CURRENCY", ("currency 1", "currency 2", "currency 3", "currency 4")),
    _num("DAYS_CREDIT", "int", False, max=0), _num("CREDIT_DAY_OVERDUE", "int", False, min=0),
    _num("DAYS_CREDIT_ENDDATE"), _num("DAYS_ENDDATE_FACT", max=0), _num("AMT_CREDIT_MAX_OVERDUE", min=0),
    _num("CNT_CREDIT_PROLONG", "int", False, min=0), _num("AMT_CREDIT_SUM", min=0), _num("AMT_CREDIT_SUM_DEBT"),
    _num("AMT_CREDIT_SUM_LIMIT"), _num("AMT_CREDIT_SUM_OVERDUE", min=0),
    _cat("CREDIT_TYPE", (
        "Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan", "Loan for business development",
        "Another type of loan", "Unknown type of loan", "Loan for working capital replenishment",
        "Cash loan (non-earmarked)", "Real estate loan", "Loan for the purchase of equipment",
        "Loan for purchase of shares (margin lending)", "Interbank credit", "Mobile operator loan",
    ), severity="warn"),
    _num("DAYS_CREDIT_UPDATE", "int", False), _num("AMT_ANNUITY", min=0),
], "SK_ID_BUREAU", {"SK_ID_CURR": "application_train"})
_BUREAU_BALANCE = _table("bureau_balance", [
    _key("SK_ID_BUREAU"), _num("MONTHS_BALANCE", "int", False, max=0),
    _cat("STATUS", ("C", "X", "0", "1", "2", "3", "4", "5")),
], None, {"SK_ID_BUREAU": "bureau"})
_PREVIOUS_APPLICATION = _table("previous_application", [
    _key("SK_ID_PREV"), _key("SK_ID_CURR"),
    _cat("NAME_CONTRACT_TYPE", ("Consumer loans", "Cash loans", "Revolving loans", "XNA")),
    _num("AMT_ANNUITY", min=0), _num("AMT_APPLICATION", min=0), _num("AMT_CREDIT", min=0),
    _num("AMT_DOWN_PAYMENT"), _num("AMT_GOODS_PRICE", min=0),
    _cat("WEEKDAY_APPR_PROCESS_START", WEEKDAYS), _num("HOUR_APPR_PROCESS_START", "int", False, min=0, max=23),
    _cat("FLAG_LAST_APPL_PER_CONTRACT", YES_NO), _num("NFLAG_LAST_APPL_IN_DAY", "flag", False, min=0, max=1),
    _num("RATE_DOWN_PAYMENT", max=1), _num("RATE_INTEREST_PRIMARY", min=0, max=1),
    _num("RATE_INTEREST_PRIVILEGED", min=0, max=1),
    _cat("NAME_CASH_LOAN_PURPOSE", (
        "XAP", "XNA", "Repairs", "Other", "Urgent needs", "Buying a used car", "Building a house or an annex",
        "Everyday expenses", "Medicine", "Payments on other loans", "Education", "Journey",
        "Purchase of electronic equipment", "Buying a new car", "Wedding / gift / holiday", "Buying a home",
        "Car repairs", "Furniture", "Buying a holiday home / land", "Business development",
        "Gasification / water supply", "Buying a garage", "Hobby", "Money for a third person",
        "Refusal to name the goal",
    ), severity="warn"),
    _cat("NAME_CONTRACT_STATUS", ("Approved", "Canceled", "Refused", "Unused offer")),
    _num("DAYS_DECISION", "int", False, max=0),
    _cat("NAME_PAYMENT_TYPE", ("Cash through the bank", "XNA", "Non-cash from your account",
                               "Cashless from the account of the employer")),
    _cat("CODE_REJECT_REASON", ("XAP", "HC", "LIMIT", "SCO", "CLIENT", "SCOFR", "XNA", "VERIF", "SYSTEM")),
    _cat("NAME_TYPE_SUITE", TYPE_SUITE, nullable=True),
    _cat("NAME_CLIENT_TYPE", ("Repeater", "New", "Refreshed", "XNA")),
    _cat("NAME_GOODS_CATEGORY", (
        "XNA", "Mobile", "Consumer Electronics", "Computers", "Audio/Video", "Furniture", "Photo / Cinema Equipment",
        "Construction Materials", "Clothing and Accessories", "Auto Accessories", "Jewelry", "Homewares",
        "Medical Supplies", "Vehicles", "Sport and Leisure", "Gardening", "Other", "Office Appliances", "Tourism",
        "Medicine", "Direct Sales", "Fitness", "Additional Service", "Education", "Weapon", "Insurance",
        "House Construction", "Animals",
    ), severity="warn"),
    _cat("NAME_PORTFOLIO", ("POS", "Cash", "XNA", "Cards", "Cars")),
    _cat("NAME_PRODUCT_TYPE", ("XNA", "x-sell", "walk-in")),
    _cat("CHANNEL_TYPE", ("Credit and cash offices", "Country-wide", "Stone", "Regional / Local", "Contact center",
                          "AP+ (Cash loan)", "Channel of corporate sales", "Car dealer")),
    _num("SELLERPLACE_AREA", "int", False, min=-1),
    _cat("NAME_SELLER_INDUSTRY", ("XNA", "Consumer electronics", "Connectivity", "Furniture", "Construction",
                                  "Clothing", "Industry", "Auto technology", "Jewelry", "MLM partners", "Tourism")),
    _num("CNT_PAYMENT", min=0),
    _cat("NAME_YIELD_GROUP", ("XNA", "middle", "high", "low_normal", "low_action")),
    _cat("PRODUCT_COMBINATION", (
        "Cash", "POS household with interest", "POS mobile with interest", "Cash X-Sell: middle",
        "Cash X-Sell: low", "Card Street", "POS industry with interest", "POS household without interest",
        "Card X-Sell", "Cash Street: high", "Cash X-Sell: high", "Cash Street: middle", "Cash Street: low",
        "POS mobile without interest", "POS other with interest", "POS industry without interest",
        "POS others without interest",
    ), nullable=True),
    _num("DAYS_FIRST_DRAWING", max=DAYS_SENTINEL), _num("DAYS_FIRST_DUE", max=DAYS_SENTINEL),
    _num("DAYS_LAST_DUE_1ST_VERSION", max=DAYS_SENTINEL), _num("DAYS_LAST_DUE", max=DAYS_SENTINEL),
    _num("DAYS_TERMINATION", max=DAYS_SENTINEL), _num("NFLAG_INSURED_ON_APPROVAL", "flag", min=0, max=1),
], "SK_ID_PREV", {"SK_ID_CURR": "application_train"})
_POS_CASH_BALANCE = _table("POS_CASH_balance", [
    _key("SK_ID_PREV"), _key("SK_ID_CURR"), _num("MONTHS_BALANCE", "int", False, max=0),
    _num("CNT_INSTALMENT", min=0), _num("CNT_INSTALMENT_FUTURE", min=0),
    _cat("NAME_CONTRACT_STATUS", ("Active", "Completed", "Signed", "Demand", "Returned to the store", "Approved",
                                  "Amortized debt", "Canceled", "XNA")),
    _num("SK_DPD", "int", False, min=0), _num("SK_DPD_DEF", "int", False, min=0),
], None, {"SK_ID_CURR": "application_train", "SK_ID_PREV": "previous_application"})
_INSTALLMENTS_PAYMENTS = _table("installments_payments", [
    _key("SK_ID_PREV"), _key("SK_ID_CURR"), _num("NUM_INSTALMENT_VERSION", min=0),
    _num("NUM_INSTALMENT_NUMBER", "int", False, min=1), _num("DAYS_INSTALMENT", max=0),
    _num("DAYS_ENTRY_PAYMENT", max=0), _num("AMT_INSTALMENT", min=0), _num("AMT_PAYMENT", min=0),
], None, {"SK_ID_CURR": "application_train", "SK_ID_PREV": "previous_application"})
_CREDIT_CARD_BALANCE = _table("credit_card_balance", [
    _key("SK_ID_PREV"), _key("SK_ID_CURR"), _num("MONTHS_BALANCE", "int", False, max=0),
    _num("AMT_BALANCE"), _num("AMT_CREDIT_LIMIT_ACTUAL", min=0), _num("AMT_DRAWINGS_ATM_CURRENT"),
    _num("AMT_DRAWINGS_CURRENT"), _num("AMT_DRAWINGS_OTHER_CURRENT"), _num("AMT_DRAWINGS_POS_CURRENT"),
    _num("AMT_INST_MIN_REGULARITY", min=0), _num("AMT_PAYMENT_CURRENT", min=0),
    _num("AMT_PAYMENT_TOTAL_CURRENT", min=0), _num("AMT_RECEIVABLE_PRINCIPAL"), _num("AMT_RECIVABLE"),
    _num("AMT_TOTAL_RECEIVABLE"), _num("CNT_DRAWINGS_ATM_CURRENT", min=0), _num("CNT_DRAWINGS_CURRENT", min=0),
    _num("CNT_DRAWINGS_OTHER_CURRENT", min=0), _num("CNT_DRAWINGS_POS_CURRENT", min=0),
    _num("CNT_INSTALMENT_MATURE_CUM", min=0),
    _cat("NAME_CONTRACT_STATUS", ("Active", "Completed", "Signed", "Demand", "Sent proposal", "Refused",
                                  "Approved")),
    _num("SK_DPD", "int", False, min=0), _num("SK_DPD_DEF", "int", False, min=0),
], None, {"SK_ID_CURR": "application_train", "SK_ID_PREV": "previous_application"})

DOMAIN_TABLES: dict[str, Table] = {
    t.name: t for t in (
        _APPLICATION_TRAIN, _APPLICATION_TEST, _BUREAU, _BUREAU_BALANCE, _PREVIOUS_APPLICATION, _POS_CASH_BALANCE,
        _INSTALLMENTS_PAYMENTS, _CREDIT_CARD_BALANCE,
    )
}
"""The tables with their domain rules only: what `tools/envelopes.py` closes the open ranges of."""

# ---- plausibility bounds: derived numbers ---------------------------------------------------------------------------
# Written by `python -m tools.envelopes --write` (its docstring has the sources); do not edit by hand. Margin rule:
# - applications: the open side of a range gets the smallest 1-2-5 number (1, 2, 5, 10, 20, 50, ...) at or above
#   twice the largest magnitude known: the envelope of every real row in ../shared (the complete application_test
#   included) widened by the published extremes of Kaggle's full application_train. Time spans stop at 100 years
#   (DAYS_* >= -36600, OWN_CAR_AGE <= 100), the oldest applicant (DAYS_BIRTH >= -100 years).
# - history tables: the same 1-2-5 rounding of 100 times the largest magnitude in the real samples, which hold 0.1% to
#   4% of Kaggle's rows (their extremes are far from the full files'): caps against absurd values (overflow, unit
#   errors), not plausibility ranges. A column with no sign rule gets a symmetric range.
# - closed ranges (shares 0-1, flags, hours 0-23, ratings 1-3, ages 14-100 years) are domain rules, not derived;
#   keys stop at 2^53 - 1 (KEY_MAX).
# BEGIN BOUNDS (tools/envelopes.py)
BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "application": {
        "CNT_CHILDREN": (0, 50),
        "AMT_INCOME_TOTAL": (0, 500_000_000),
        "AMT_CREDIT": (0, 10_000_000),
        "AMT_ANNUITY": (0, 1_000_000),
        "AMT_GOODS_PRICE": (0, 10_000_000),
        "DAYS_EMPLOYED": (-36_600, 0),
        "DAYS_REGISTRATION": (-36_600, 0),
        "DAYS_ID_PUBLISH": (-20_000, 0),
        "OWN_CAR_AGE": (0, 100),
        "CNT_FAM_MEMBERS": (1, 50),
        "OBS_30_CNT_SOCIAL_CIRCLE": (0, 1_000),
        "DEF_30_CNT_SOCIAL_CIRCLE": (0, 100),
        "OBS_60_CNT_SOCIAL_CIRCLE": (0, 1_000),
        "DEF_60_CNT_SOCIAL_CIRCLE": (0, 50),
        "DAYS_LAST_PHONE_CHANGE": (-10_000, 0),
        "AMT_REQ_CREDIT_BUREAU_HOUR": (0, 10),
        "AMT_REQ_CREDIT_BUREAU_DAY": (0, 20),
        "AMT_REQ_CREDIT_BUREAU_WEEK": (0, 20),
        "AMT_REQ_CREDIT_BUREAU_MON": (0, 100),
        "AMT_REQ_CREDIT_BUREAU_QRT": (0, 1_000),
        "AMT_REQ_CREDIT_BUREAU_YEAR": (0, 50),
    },
    "bureau": {
        "DAYS_CREDIT": (-500_000, 0),
        "CREDIT_DAY_OVERDUE": (0, 500_000),
        "DAYS_CREDIT_ENDDATE": (-5_000_000, 5_000_000),
        "DAYS_ENDDATE_FACT": (-500_000, 0),
        "AMT_CREDIT_MAX_OVERDUE": (0, 1_000_000_000),
        "CNT_CREDIT_PROLONG": (0, 500),
        "AMT_CREDIT_SUM": (0, 5_000_000_000),
        "AMT_CREDIT_SUM_DEBT": (-5_000_000_000, 5_000_000_000),
        "AMT_CREDIT_SUM_LIMIT": (-200_000_000, 200_000_000),
        "AMT_CREDIT_SUM_OVERDUE": (0, 100_000_000),
        "DAYS_CREDIT_UPDATE": (-5_000_000, 5_000_000),
        "AMT_ANNUITY": (0, 1_000_000_000),
    },
    "bureau_balance": {
        "MONTHS_BALANCE": (-10_000, 0),
    },
    "previous_application": {
        "AMT_ANNUITY": (0, 20_000_000),
        "AMT_APPLICATION": (0, 500_000_000),
        "AMT_CREDIT": (0, 500_000_000),
        "AMT_DOWN_PAYMENT": (-50_000_000, 50_000_000),
        "AMT_GOODS_PRICE": (0, 500_000_000),
        "RATE_DOWN_PAYMENT": (-100, 1),
        "DAYS_DECISION": (-500_000, 0),
        "SELLERPLACE_AREA": (-1, 500_000_000),
        "CNT_PAYMENT": (0, 10_000),
        "DAYS_FIRST_DRAWING": (-500_000, 365_243),
        "DAYS_FIRST_DUE": (-500_000, 365_243),
        "DAYS_LAST_DUE_1ST_VERSION": (-500_000, 365_243),
        "DAYS_LAST_DUE": (-500_000, 365_243),
        "DAYS_TERMINATION": (-500_000, 365_243),
    },
    "POS_CASH_balance": {
        "MONTHS_BALANCE": (-10_000, 0),
        "CNT_INSTALMENT": (0, 10_000),
        "CNT_INSTALMENT_FUTURE": (0, 10_000),
        "SK_DPD": (0, 500_000),
        "SK_DPD_DEF": (0, 500_000),
    },
    "installments_payments": {
        "NUM_INSTALMENT_VERSION": (0, 5_000),
        "NUM_INSTALMENT_NUMBER": (1, 50_000),
        "DAYS_INSTALMENT": (-500_000, 0),
        "DAYS_ENTRY_PAYMENT": (-500_000, 0),
        "AMT_INSTALMENT": (0, 500_000_000),
        "AMT_PAYMENT": (0, 500_000_000),
    },
    "credit_card_balance": {
        "MONTHS_BALANCE": (-10_000, 0),
        "AMT_BALANCE": (-100_000_000, 100_000_000),
        "AMT_CREDIT_LIMIT_ACTUAL": (0, 200_000_000),
        "AMT_DRAWINGS_ATM_CURRENT": (-500_000_000, 500_000_000),
        "AMT_DRAWINGS_CURRENT": (-500_000_000, 500_000_000),
        "AMT_DRAWINGS_OTHER_CURRENT": (-100_000_000, 100_000_000),
        "AMT_DRAWINGS_POS_CURRENT": (-200_000_000, 200_000_000),
        "AMT_INST_MIN_REGULARITY": (0, 5_000_000),
        "AMT_PAYMENT_CURRENT": (0, 500_000_000),
        "AMT_PAYMENT_TOTAL_CURRENT": (0, 500_000_000),
        "AMT_RECEIVABLE_PRINCIPAL": (-100_000_000, 100_000_000),
        "AMT_RECIVABLE": (-100_000_000, 100_000_000),
        "AMT_TOTAL_RECEIVABLE": (-100_000_000, 100_000_000),
        "CNT_DRAWINGS_ATM_CURRENT": (0, 5_000),
        "CNT_DRAWINGS_CURRENT": (0, 10_000),
        "CNT_DRAWINGS_OTHER_CURRENT": (0, 1_000),
        "CNT_DRAWINGS_POS_CURRENT": (0, 10_000),
        "CNT_INSTALMENT_MATURE_CUM": (0, 20_000),
        "SK_DPD": (0, 500_000),
        "SK_DPD_DEF": (0, 20_000),
    },
}
# END BOUNDS (tools/envelopes.py)
"""Per table ("application" for both application tables): column -> (min, max), the domain side included."""


def bounds_of(table_name: str) -> dict[str, tuple[float, float]]:
    return BOUNDS.get("application" if table_name.startswith("application_") else table_name, {})


def with_bounds(domain: Table, bounds: dict[str, tuple[float, float]] | None = None) -> Table:
    """The table with plausibility bounds (by default its own of `BOUNDS`) as its columns' min and max."""
    bounds = bounds_of(domain.name) if bounds is None else bounds
    columns = tuple(replace(c, min=bounds[c.name][0], max=bounds[c.name][1]) if c.name in bounds else c
                    for c in domain.columns)
    return replace(domain, columns=columns)


TABLES: dict[str, Table] = {name: with_bounds(t) for name, t in DOMAIN_TABLES.items()}
"""The contract: every table with its domain rules and plausibility bounds."""
REQUIRED_TABLES = ("application_train",)
"""Only the training applications are indispensable; any other table may be absent (its features are then missing)."""
HISTORY_TABLES = ("bureau", "bureau_balance", "previous_application", "POS_CASH_balance", "installments_payments",
                  "credit_card_balance")
"""The applicants' histories: every table but the applications, in Kaggle's order."""


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the contract knows {sorted(TABLES)}") from None
