"""Schemathesis hooks for scripts/schemathesis.sh.

http/openapi.yaml states some constraints in words, because JSON Schema
cannot: times relative to now, a price's decimals by its currency, what a
phone number or a time zone is, opaque cursors, CSV bodies, and parameters
that exclude each other. These hooks teach the generator the same, and
nothing more: each one only touches a part of a request generated as valid
(positive), and turns it into a value the document allows and the words
allow too. Parts generated as invalid (negative) are left alone, so the
server must still refuse them.
"""

import base64
import csv
import datetime as dt
import io
import os
import random
from urllib.parse import unquote

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

rng = random.Random(os.environ.get("SCHEMATHESIS_SEED"))

# Possible numbers in the forms people write, and time zone names.
PHONES = ["+47 915 55 501", "+4791234567", "915 55 502", "+44 20 7946 0018", "+1 212 555 0123", "22 33 44 55", "+49 30 901820"]
ZONES = ["Europe/Oslo", "UTC", "America/New_York", "Asia/Tokyo", "Europe/Berlin", "Australia/Sydney", "Etc/GMT+5", "America/Argentina/Buenos_Aires"]
CUSTOMERS = ["c1", "c42", "=1+1", "Kari Nordmann", "kunde-æøå", "x" * 128, "a/b%2F"]

schemathesis.openapi.format("phone", st.sampled_from(PHONES))
schemathesis.openapi.format("time-zone", st.sampled_from(ZONES))


def _positive(case, location):
    meta = case.meta
    return meta is None or not meta.is_negative_at(location)


def _time(delta):
    t = dt.datetime.now(dt.timezone.utc) + delta
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _planned():
    """A time to come: the at of a check or a scrub."""
    return _time(dt.timedelta(hours=rng.randint(1, 24 * 365)))


def _cursor():
    raw = f"1:{rng.randint(0, 4_000_000_000_000)}:e{rng.randint(0, 999)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _price(value):
    """A whole amount: valid in every currency, and under 18 digits."""
    if isinstance(value, str):
        try:
            return str(int(min(abs(float(value)), 1e9)))
        except ValueError:
            return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(int(min(abs(value), 1e9)))


def _csv_list():
    """A list that a scrub and a suppression upload both take."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    w.writerow(["customer_id", "phone", "reason", "name"])
    for _ in range(rng.randint(0, 8)):
        w.writerow([rng.choice(CUSTOMERS), rng.choice(PHONES + [""]), rng.choice(["", "asked not to be called", "=cmd|' /C calc'!A0"]), rng.choice(["Ann", "Berg, Anne", "@x", ""])])
    return out.getvalue()


def _fix_json(value, path):
    """Walks a JSON body: times, prices, phones and zones as the words say."""
    if isinstance(value, list):
        return [_fix_json(v, path) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "at" and isinstance(v, str):
            if path.startswith("/v1/check"):
                if value.get("claim") is True:
                    continue  # a check that claims takes no at to come
                v = _planned()
            else:
                v = _time(-dt.timedelta(minutes=rng.randint(0, 60 * 24 * 365)))
        elif key == "expires_at" and isinstance(v, str):
            v = _time(dt.timedelta(days=rng.randint(-365, 365)))
        elif key == "price":
            v = _price(v)
        elif key == "phone" and isinstance(v, str) and v:
            v = rng.choice(PHONES)
        elif key == "phones" and isinstance(v, list):
            v = [rng.choice(PHONES) for _ in v]
        elif key == "timezone" and isinstance(v, str) and v:
            v = rng.choice(ZONES)
        else:
            v = _fix_json(v, path)
        out[key] = v
    return out


@schemathesis.hook
def map_case(context, case):
    path = case.path
    if _positive(case, ParameterLocation.QUERY) and isinstance(case.query, dict):
        q = case.query
        if q.get("before"):
            q["before"] = _cursor()
        if q.get("at"):
            q["at"] = _planned()
        if q.get("price") not in (None, ""):
            q["price"] = _price(q["price"])
        if q.get("policy") not in (None, "", "live"):
            q["policy"] = "live"  # this server has no presets
        if q.get("phone"):
            q["phone"] = rng.choice(PHONES)
        if q.get("cursor"):
            del q["cursor"]  # a follow-ups cursor is the next of an earlier page: none here
        if q.get("since"):
            q["since"] = rng.choice(["24h", "7d", "90d", "1d12h", "30m"])  # more than 0, at most 90d
        if q.get("customer_id") and q.get("phone"):
            del q["phone"]  # one or the other
    if _positive(case, ParameterLocation.PATH) and isinstance(case.path_parameters, dict):
        entry = case.path_parameters.get("entry")
        # Some phases hand path parameters over encoded already.
        if isinstance(entry, str) and unquote(entry).startswith("phone:"):
            case.path_parameters["entry"] = "phone:" + rng.choice(["+4791234567", "+442079460018", "91555501"])
    if _positive(case, ParameterLocation.BODY):
        if case.media_type == "text/csv":
            case.body = _csv_list()
        elif case.media_type == "multipart/form-data" and isinstance(case.body, dict):
            case.body["list"] = _csv_list().encode()
            if "policy" in case.body and isinstance(case.query, dict):
                case.query.pop("policy", None)  # an inline policy or a preset, not both
            if "policy" in case.body:
                case.body["policy"] = rng.choice(["", "cooldowns: {call: 24h}\n", "quiet_hours: {start: '20:00', end: '09:00'}\n"])
        elif case.media_type == "application/x-www-form-urlencoded" and isinstance(case.body, dict):
            if "price" in case.body:
                case.body["price"] = _price(case.body["price"])
        elif case.media_type == "application/json":
            case.body = _fix_json(case.body, path)
    return case
