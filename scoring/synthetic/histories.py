"""The six history tables of the generator, one-to-many per applicant and driven by the latent `r_hist`.

Each function takes the owners' ids and latent payment behaviour, and a running id counter so that keys are unique
across chunks. Per-applicant counts follow the histograms in the calibration (bureau credits, balance months, card
months, previous applications); POS and instalment rows follow each approved loan's term and age, as in Kaggle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from scoring import contract
from scoring.synthetic.generator import (
    DAYS_PER_MONTH,
    calibration,
    category_from_spec,
    correlated_uniform,
    fill_generic,
    sample_counts,
    to_frame,
)

BALANCE_WINDOW_MONTHS = 96  # Kaggle's monthly tables cover the last 96 months


@dataclass
class IdCounter:
    next_bureau: int = 5_000_000
    next_prev: int = 1_000_000

    def take(self, kind: str, n: int) -> np.ndarray:
        start = getattr(self, f"next_{kind}")
        setattr(self, f"next_{kind}", start + n)
        return np.arange(start, start + n, dtype=np.int64)


def positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For parents with `counts` children: each child's parent index and its rank 0..count-1 within the parent."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.arange(len(owner)) - starts


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.standard_normal(n))


# ---- bureau and bureau_balance ------------------------------------------------------------------------------------
def generate_bureau(
    curr_ids: np.ndarray, r_hist: np.ndarray, rng: np.random.Generator, ids: IdCounter
) -> tuple[pd.DataFrame, pd.DataFrame]:
    hist = calibration()["histories"]
    owner, _ = positions(sample_counts(hist["bureau_per_applicant"], len(curr_ids), rng))
    m, rh = len(owner), r_hist[owner]
    structured = {"CREDIT_ACTIVE", "DAYS_CREDIT_ENDDATE", "DAYS_ENDDATE_FACT", "CREDIT_DAY_OVERDUE",
                  "AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM_OVERDUE", "AMT_CREDIT_MAX_OVERDUE", "DAYS_CREDIT_UPDATE"}
    cols = fill_generic("bureau", m, rng, structured)
    spec = calibration()["tables"]["bureau"]["columns"]
    cols["CREDIT_ACTIVE"] = category_from_spec(spec["CREDIT_ACTIVE"], correlated_uniform(rh, 0.35, rng))
    active = cols["CREDIT_ACTIVE"] != "Closed"
    duration = _lognormal(rng, 700, 0.8, m)
    cols["DAYS_CREDIT_ENDDATE"] = np.where(rng.random(m) < spec["DAYS_CREDIT_ENDDATE"]["missing"], np.nan,
                                           np.round(cols["DAYS_CREDIT"] + duration))
    closed_on = np.minimum(np.round(cols["DAYS_CREDIT"] + duration * rng.uniform(0.6, 1.05, m)), 0)
    cols["DAYS_ENDDATE_FACT"] = np.where(active, np.nan, closed_on)
    overdue = active & (rng.random(m) < expit(-4.2 + 1.1 * rh))
    cols["CREDIT_DAY_OVERDUE"] = np.where(overdue, np.round(_lognormal(rng, 20, 1.2, m)), 0).astype(np.int64)
    debt = np.round(np.nan_to_num(cols["AMT_CREDIT_SUM"]) * rng.random(m), 2)
    cols["AMT_CREDIT_SUM_DEBT"] = np.where(rng.random(m) < spec["AMT_CREDIT_SUM_DEBT"]["missing"], np.nan,
                                           np.where(active, debt, 0.0))
    cols["AMT_CREDIT_SUM_OVERDUE"] = np.where(overdue, np.round(debt * rng.uniform(0.02, 0.3, m), 2), 0.0)
    ever_late = rng.random(m) < expit(-2.0 + 1.0 * rh)
    max_overdue = np.where(ever_late, np.round(np.nan_to_num(cols["AMT_CREDIT_SUM"]) * rng.uniform(0, 0.1, m)), 0.0)
    cols["AMT_CREDIT_MAX_OVERDUE"] = np.where(
        rng.random(m) < spec["AMT_CREDIT_MAX_OVERDUE"]["missing"], np.nan, max_overdue)
    last_update = np.where(active, -np.round(rng.uniform(0, 60, m)), np.nan_to_num(closed_on) + rng.integers(0, 30, m))
    cols["DAYS_CREDIT_UPDATE"] = np.minimum(last_update, 0).astype(np.int64)
    cols["SK_ID_CURR"] = curr_ids[owner]
    cols["SK_ID_BUREAU"] = ids.take("bureau", m)
    bureau = to_frame("bureau", cols)
    return bureau, generate_bureau_balance(bureau, rh, rng)


def balance_status(rh: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Monthly status: '0' on time, '1'..'5' growing delinquency, 'X' unknown."""
    n = len(rh)
    late = rng.random(n) < expit(-3.6 + 1.2 * rh)
    severity = 1 + (rng.random(n) < 0.25) + (rng.random(n) < 0.08) + (rng.random(n) < 0.04) + (rng.random(n) < 0.03)
    status = np.where(late, severity.astype(str), "0").astype(object)
    status[rng.random(n) < 0.2] = "X"
    return status


def generate_bureau_balance(bureau: pd.DataFrame, rh: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    hist = calibration()["histories"]
    with_balance = np.flatnonzero(rng.random(len(bureau)) < hist["bureau_share_with_balance"])
    months = sample_counts(hist["balance_months_per_bureau"], len(with_balance), rng, first=1)
    parent, rank = positions(months)
    credit = with_balance[parent]
    month = rank - (months[parent] - 1)  # 0 is the latest month
    closed_months_ago = np.nan_to_num(-bureau["DAYS_ENDDATE_FACT"].to_numpy()[credit] / DAYS_PER_MONTH, nan=-1)
    status = balance_status(rh[credit], rng)
    status[-month < closed_months_ago] = "C"
    return pd.DataFrame({
        "SK_ID_BUREAU": bureau["SK_ID_BUREAU"].to_numpy()[credit],
        "MONTHS_BALANCE": month.astype(np.int64),
        "STATUS": status,
    })


# ---- previous applications ----------------------------------------------------------------------------------------
PREVIOUS_STRUCTURED = {
    "NAME_CONTRACT_STATUS", "CODE_REJECT_REASON", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "CNT_PAYMENT",
    "DAYS_FIRST_DRAWING", "DAYS_FIRST_DUE", "DAYS_LAST_DUE_1ST_VERSION", "DAYS_LAST_DUE", "DAYS_TERMINATION",
    "NFLAG_INSURED_ON_APPROVAL",
}


def previous_status(rh: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Refusals grow with r_hist; the rest split between Approved, Canceled and Unused offer as in Kaggle."""
    freq = calibration()["tables"]["previous_application"]["columns"]["NAME_CONTRACT_STATUS"]["freq"]
    refused = rng.random(len(rh)) < expit(logit(freq["Refused"]) + 0.8 * rh)
    rest = {k: v for k, v in freq.items() if k != "Refused"}
    labels, shares = list(rest), np.cumsum(list(rest.values()))
    status = np.array(labels, dtype=object)[np.searchsorted(shares / shares[-1], rng.random(len(rh)), side="right")]
    status[refused] = "Refused"
    reasons = calibration()["tables"]["previous_application"]["columns"]["CODE_REJECT_REASON"]["freq"]
    refusal_reasons = {k: v for k, v in reasons.items() if k != "XAP"}
    reason = np.full(len(rh), "XAP", dtype=object)
    reason[refused] = category_from_spec({"freq": refusal_reasons, "missing": 0}, rng.random(refused.sum()))
    return status, reason


def loan_terms(cols: dict, approved: np.ndarray, rng: np.random.Generator) -> None:
    """Credit, annuity and due dates of previous loans; only approved loans have dates (365243: not yet/never)."""
    m = len(approved)
    spec = calibration()["tables"]["previous_application"]["columns"]
    cols["AMT_CREDIT"] = np.round(cols["AMT_APPLICATION"] * rng.uniform(0.9, 1.15, m), 1)
    cols["AMT_GOODS_PRICE"] = np.where(rng.random(m) < spec["AMT_GOODS_PRICE"]["missing"], np.nan,
                                       cols["AMT_APPLICATION"])
    term = np.round(np.interp(rng.random(m) * 100, np.arange(101), spec["CNT_PAYMENT"]["quantiles"]))
    term = np.where(rng.random(m) < spec["CNT_PAYMENT"]["missing"], np.nan, np.maximum(term, 0))
    cols["CNT_PAYMENT"] = term
    with_term = np.nan_to_num(term) > 0
    cols["AMT_ANNUITY"] = np.where(with_term, np.round(cols["AMT_CREDIT"] * (1 + 0.01 * term) / np.where(
        with_term, term, 1), 2), np.nan)
    first_due = np.minimum(cols["DAYS_DECISION"] + rng.integers(10, 40, m), -1).astype(float)
    last_planned = first_due + DAYS_PER_MONTH * (np.nan_to_num(term) - 1)
    finished = last_planned < 0
    sentinel = float(contract.DAYS_SENTINEL)
    dates = {
        "DAYS_FIRST_DRAWING": np.where(rng.random(m) < 0.03, cols["DAYS_DECISION"] + 5.0, sentinel),
        "DAYS_FIRST_DUE": first_due,
        "DAYS_LAST_DUE_1ST_VERSION": np.round(last_planned),
        "DAYS_LAST_DUE": np.where(finished, np.round(last_planned), sentinel),
        "DAYS_TERMINATION": np.where(finished, np.minimum(np.round(last_planned) + 5, 0), sentinel),
        "NFLAG_INSURED_ON_APPROVAL": (rng.random(m) < 0.33).astype(float),
    }
    for name, values in dates.items():
        cols[name] = np.where(approved, values, np.nan)


def card_contracts(cols: dict, is_card: np.ndarray) -> None:
    """Revolving card contracts (those with credit_card_balance rows) are approved 'Cards' loans."""
    fixed = {
        "NAME_CONTRACT_TYPE": "Revolving loans", "NAME_CONTRACT_STATUS": "Approved", "CODE_REJECT_REASON": "XAP",
        "NAME_PORTFOLIO": "Cards", "PRODUCT_COMBINATION": "Card Street", "NAME_CASH_LOAN_PURPOSE": "XAP",
    }
    for name, value in fixed.items():
        cols[name][is_card] = value
    cols["CNT_PAYMENT"][is_card] = 0
    cols["AMT_ANNUITY"][is_card] = np.nan


def generate_previous(
    curr_ids: np.ndarray, r_hist: np.ndarray, rng: np.random.Generator, ids: IdCounter
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """previous_application rows, plus each row's owner index and whether it is a card contract."""
    hist = calibration()["histories"]
    n = len(curr_ids)
    counts = sample_counts(hist["previous_per_applicant"], n, rng)
    cards = sample_counts(hist["cards_per_applicant"], n, rng)
    owner, rank = positions(counts + cards)
    is_card = rank >= counts[owner]
    m, rh = len(owner), r_hist[owner]
    cols = fill_generic("previous_application", m, rng, PREVIOUS_STRUCTURED)
    cols["NAME_CONTRACT_STATUS"], cols["CODE_REJECT_REASON"] = previous_status(rh, rng)
    loan_terms(cols, cols["NAME_CONTRACT_STATUS"] == "Approved", rng)
    card_contracts(cols, is_card)
    for name in ("DAYS_FIRST_DUE", "DAYS_LAST_DUE_1ST_VERSION", "DAYS_LAST_DUE", "DAYS_TERMINATION"):
        cols[name] = np.where(is_card, float(contract.DAYS_SENTINEL), cols[name])
    approved = cols["NAME_CONTRACT_STATUS"] == "Approved"  # cards included
    cols["NFLAG_INSURED_ON_APPROVAL"] = np.where(approved, np.nan_to_num(cols["NFLAG_INSURED_ON_APPROVAL"]), np.nan)
    cols["SK_ID_CURR"] = curr_ids[owner]
    cols["SK_ID_PREV"] = ids.take("prev", m)
    return to_frame("previous_application", cols), owner, is_card


# ---- POS_CASH_balance and installments_payments -------------------------------------------------------------------
def instalment_loans(prev: pd.DataFrame, is_card: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approved instalment loans and the months elapsed since their decision."""
    term = np.nan_to_num(prev["CNT_PAYMENT"].to_numpy())
    loans = np.flatnonzero((prev["NAME_CONTRACT_STATUS"].to_numpy() == "Approved") & ~is_card & (term > 0))
    elapsed = np.floor(-prev["DAYS_DECISION"].to_numpy()[loans] / DAYS_PER_MONTH).astype(np.int64)
    return loans, elapsed


def generate_pos_cash(prev: pd.DataFrame, loans: np.ndarray, elapsed: np.ndarray, rh: np.ndarray,
                      rng: np.random.Generator) -> pd.DataFrame:
    term = prev["CNT_PAYMENT"].to_numpy()[loans].astype(np.int64)
    first_month = -(elapsed + 1)
    rows = np.clip(np.minimum(elapsed, term) + 1, 0, np.maximum(BALANCE_WINDOW_MONTHS + first_month + 1, 0))
    loan, rank = positions(rows)
    month = first_month[loan] + rank
    future = np.maximum(term[loan] - rank, 0)
    late_loan = rng.random(len(loans)) < expit(-3.2 + 1.2 * rh[loans])
    dpd = np.where(late_loan[loan] & (rng.random(len(loan)) < 0.3), np.round(np.exp(rng.normal(2.3, 1.0, len(loan)))),
                   0).astype(np.int64)
    return pd.DataFrame({
        "SK_ID_PREV": prev["SK_ID_PREV"].to_numpy()[loans][loan],
        "SK_ID_CURR": prev["SK_ID_CURR"].to_numpy()[loans][loan],
        "MONTHS_BALANCE": month.astype(np.int64),
        "CNT_INSTALMENT": term[loan].astype(float),
        "CNT_INSTALMENT_FUTURE": future.astype(float),
        "NAME_CONTRACT_STATUS": np.where(future == 0, "Completed", "Active").astype(object),
        "SK_DPD": dpd,
        "SK_DPD_DEF": np.where(rng.random(len(loan)) < 0.3, dpd, 0).astype(np.int64),
    })


def generate_installments(prev: pd.DataFrame, loans: np.ndarray, elapsed: np.ndarray, rh: np.ndarray,
                          rng: np.random.Generator) -> pd.DataFrame:
    """One row per due instalment: late payments and under-payments grow with r_hist."""
    term = prev["CNT_PAYMENT"].to_numpy()[loans].astype(np.int64)
    loan, rank = positions(np.minimum(elapsed, term))
    due = prev["DAYS_FIRST_DUE"].to_numpy()[loans][loan] + np.round(DAYS_PER_MONTH * rank)
    keep = due <= -1
    loan, rank, due = loan[keep], rank[keep], due[keep]
    k = len(loan)
    late = rng.random(k) < expit(-2.6 + 1.3 * rh[loans][loan])
    delay = np.where(late, rng.integers(1, 45, k), -rng.integers(0, 20, k))
    annuity = prev["AMT_ANNUITY"].to_numpy()[loans][loan]
    under = rng.random(k) < expit(-3.6 + 1.2 * rh[loans][loan])
    return pd.DataFrame({
        "SK_ID_PREV": prev["SK_ID_PREV"].to_numpy()[loans][loan],
        "SK_ID_CURR": prev["SK_ID_CURR"].to_numpy()[loans][loan],
        "NUM_INSTALMENT_VERSION": np.where(rng.random(k) < 0.02, 2.0, 1.0),
        "NUM_INSTALMENT_NUMBER": (rank + 1).astype(np.int64),
        "DAYS_INSTALMENT": due,
        "DAYS_ENTRY_PAYMENT": np.minimum(due + delay, -1).astype(float),
        "AMT_INSTALMENT": annuity,
        "AMT_PAYMENT": np.round(np.where(under, annuity * rng.uniform(0.2, 0.95, k), annuity), 2),
    })


# ---- credit_card_balance ------------------------------------------------------------------------------------------
CARD_STRUCTURED = {
    "MONTHS_BALANCE", "AMT_BALANCE", "AMT_CREDIT_LIMIT_ACTUAL", "AMT_INST_MIN_REGULARITY", "AMT_PAYMENT_CURRENT",
    "AMT_RECEIVABLE_PRINCIPAL", "AMT_RECIVABLE", "AMT_TOTAL_RECEIVABLE", "CNT_INSTALMENT_MATURE_CUM",
    "NAME_CONTRACT_STATUS", "SK_DPD", "SK_DPD_DEF",
}


def generate_credit_card(prev: pd.DataFrame, is_card: np.ndarray, rh: np.ndarray,
                         rng: np.random.Generator) -> pd.DataFrame:
    """Monthly card balances: utilisation of the limit and days past due grow with r_hist."""
    hist = calibration()["histories"]
    cards = np.flatnonzero(is_card)
    card, rank = positions(sample_counts(hist["months_per_card"], len(cards), rng, first=1))
    months = np.bincount(card, minlength=len(cards))
    k = len(card)
    cols = fill_generic("credit_card_balance", k, rng, CARD_STRUCTURED)
    limit_spec = calibration()["tables"]["credit_card_balance"]["columns"]["AMT_CREDIT_LIMIT_ACTUAL"]
    limit = np.round(np.interp(rng.random(len(cards)) * 100, np.arange(101), limit_spec["quantiles"]), -3)
    usage = expit(-1.0 + 1.0 * rh[cards] + rng.normal(0, 0.8, len(cards)))
    balance = np.round(limit[card] * np.clip(usage[card] + rng.normal(0, 0.08, k), 0, 1.2), 2)
    late = rng.random(k) < expit(-4.5 + 1.3 * rh[cards][card])
    cols.update({
        "MONTHS_BALANCE": (rank - months[card]).astype(np.int64),
        "AMT_BALANCE": balance, "AMT_CREDIT_LIMIT_ACTUAL": limit[card],
        "AMT_INST_MIN_REGULARITY": np.round(0.05 * balance, 2),
        "AMT_PAYMENT_CURRENT": np.where(late, 0.0, np.round(0.05 * balance * rng.uniform(1, 3, k), 2)),
        "AMT_RECEIVABLE_PRINCIPAL": np.round(0.95 * balance, 2), "AMT_RECIVABLE": balance,
        "AMT_TOTAL_RECEIVABLE": balance, "CNT_INSTALMENT_MATURE_CUM": rank.astype(float),
        "NAME_CONTRACT_STATUS": np.full(k, "Active", dtype=object),
        "SK_DPD": np.where(late, rng.integers(1, 60, k), 0).astype(np.int64),
    })
    cols["SK_DPD_DEF"] = np.where(rng.random(k) < 0.3, cols["SK_DPD"], 0).astype(np.int64)
    cols["SK_ID_PREV"] = prev["SK_ID_PREV"].to_numpy()[cards][card]
    cols["SK_ID_CURR"] = prev["SK_ID_CURR"].to_numpy()[cards][card]
    return to_frame("credit_card_balance", cols)


def generate_histories(
    curr_ids: np.ndarray, r_hist: np.ndarray, rng: np.random.Generator, ids: IdCounter
) -> dict[str, pd.DataFrame]:
    bureau, bureau_balance = generate_bureau(curr_ids, r_hist, rng, ids)
    prev, owner, is_card = generate_previous(curr_ids, r_hist, rng, ids)
    rh = r_hist[owner]
    loans, elapsed = instalment_loans(prev, is_card)
    return {
        "bureau": bureau,
        "bureau_balance": bureau_balance,
        "previous_application": prev,
        "POS_CASH_balance": generate_pos_cash(prev, loans, elapsed, rh, rng),
        "installments_payments": generate_installments(prev, loans, elapsed, rh, rng),
        "credit_card_balance": generate_credit_card(prev, is_card, rh, rng),
    }
