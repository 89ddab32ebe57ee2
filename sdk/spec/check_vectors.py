#!/usr/bin/env python3
"""Independent cross-check of sdk/spec/vectors.json.

A from-scratch Python model of SPEC.md (no code shared with the Rust crate):
FNV-1a 32 over UTF-16 code units, hash versions 1 and 2, bucket ranges with
coverage, namespaces, unit ids, status handling and the evaluation order, and
the subset of the condition language the vectors use (plain equality, $in,
$gte, $regex). Run from anywhere:

    python3 sdk/spec/check_vectors.py

Exits non-zero and lists the mismatches if the model and the vectors disagree.
"""

import json
import math
import re
import sys
from pathlib import Path

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(text):
    h = FNV_OFFSET
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def hash_(seed, value, version):
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    return None


def js_number(x):
    """Number.prototype.toString for the values the vectors use."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e21):
        return str(int(x))
    r = repr(x)  # shortest round-trip digits, like JS
    mantissa, _, exp = r.partition("e")
    if not exp:
        return r
    e = int(exp)
    digits = mantissa.replace(".", "").replace("-", "")
    n = e + 1
    sign = "-" if x < 0 else ""
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    if n > 21 or n <= -6:
        rest = digits[1:]
        return sign + digits[0] + ("." + rest if rest else "") + "e" + ("+" if n - 1 >= 0 else "-") + str(abs(n - 1))
    return sign + digits + "0" * (n - len(digits))


def unit_id(value):
    if isinstance(value, bool):
        return "true" if value else None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        return None if value == 0 else js_number(value)
    return None


def bucket_ranges(weights, coverage):
    n = len(weights)
    coverage = 0.0 if math.isnan(coverage) else min(max(coverage, 0.0), 1.0)
    equal = [1 / n] * n if n else []
    total = sum(weights)
    if any(w < 0 or not math.isfinite(w) for w in weights) or not (0.99 <= total <= 1.01):
        weights = equal
    ranges, cumulative = [], 0.0
    for w in weights:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def condition_ok(cond, user):
    """The subset of the condition language used by the vectors.
    Returns None for a condition that is invalid under strict compilation."""
    for key, want in cond.items():
        have = user.get(key)
        if isinstance(want, dict):
            for op, arg in want.items():
                if op == "$in":
                    if have not in arg:
                        return False
                elif op == "$gte":
                    if not (isinstance(have, (int, float)) and have >= arg):
                        return False
                elif op == "$regex":
                    try:
                        rx = re.compile(arg)
                    except re.error:
                        return None
                    if not rx.search(have if isinstance(have, str) else json.dumps(have)):
                        return False
                else:
                    return None  # unknown operator
        elif isinstance(want, str):
            if have != want:
                return False
        else:
            raise ValueError(f"vector uses an unsupported condition: {cond}")
    return True


def strictly_invalid(rule):
    keys = [v["key"] for v in rule["variants"]]
    if len(keys) < 2 or len(set(keys)) != len(keys):
        return True
    if rule["hash_version"] not in (1, 2):
        return True
    cond = rule.get("condition")
    if cond is not None:
        # Evaluate against an empty user only to detect invalidity.
        if condition_ok(cond, {}) is None:
            return True
    return False


def assign(rule, user):
    variants = rule["variants"]

    def pick(i, in_exp, reason):
        return {"variant": variants[i]["key"] if variants else "", "in_experiment": in_exp, "reason": reason}

    status = rule["status"]
    if status in ("draft", "paused", "rolled_back", "stopped"):
        return pick(0, False, status)
    invalid = strictly_invalid(rule)
    if invalid:
        return pick(0, False, "invalid_rule")
    if status == "shipped":
        keys = [v["key"] for v in variants]
        shipped = rule.get("shipped_variant")
        return pick(keys.index(shipped) if shipped in keys else 0, False, "shipped")
    cond = rule.get("condition")
    if cond is not None and not condition_ok(cond, user):
        return pick(0, False, "condition")
    attr = rule["hash_attribute"] or "id"
    uid = unit_id(user.get(attr))
    if uid is None:
        return pick(0, False, "no_hash_attribute")
    ns = rule.get("namespace")
    if ns:
        n = hash_("__" + ns["name"], uid, 1)
        if not (ns["range"][0] <= n < ns["range"][1]):
            return pick(0, False, "namespace")
    seed = rule["seed"] or rule["key"]
    n = hash_(seed, uid, rule["hash_version"])
    ranges = bucket_ranges([v["weight"] for v in variants], rule["coverage"])
    for i, (lo, hi) in enumerate(ranges):
        if lo <= n < hi:
            return pick(i, True, "split")
    return pick(0, False, "coverage")


def main():
    path = Path(__file__).with_name("vectors.json")
    vectors = json.loads(path.read_text(encoding="utf-8"))
    failures, checked = [], 0
    for v in vectors["fnv1a32_utf16"]:
        checked += 1
        if fnv1a32(v["input"]) != v["expected"]:
            failures.append(f"fnv {v}: model {fnv1a32(v['input'])}")
    for v in vectors["hash"]:
        checked += 1
        got = hash_(v["seed"], v["value"], v["version"])
        if got != v["expected"]:
            failures.append(f"hash {v}: model {got}")
    for v in vectors["unit_id"]:
        checked += 1
        got = unit_id(v["value"])
        if got != v["expected"]:
            failures.append(f"unit_id {v}: model {got}")
    for group in vectors["assign"]:
        rules = {r["key"]: r for r in group["ruleset"]["experiments"]}
        for case in group["cases"]:
            checked += 1
            got = assign(rules[case["experiment"]], case["user"])
            if got != case["expected"]:
                failures.append(f"{group['name']} / {case['experiment']} / {case['user']}: model {got}, vector {case['expected']}")
    if failures:
        print(f"{len(failures)} of {checked} vectors disagree with the Python model:")
        print("\n".join(failures))
        return 1
    print(f"{checked} vectors agree with the Python model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
