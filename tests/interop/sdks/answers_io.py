"""The Python checkers' side of the harness: read the fixture main.js wrote,
print the SDK's answers as JSON on stdout for main.js to judge."""

import json
import sys


def read_fixture():
    """{url, sdkKeys: {env: key}, experiments: [{key, valueType}], users: [attributes]}."""
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)


def write_answers(name, answers):
    """answers: environment -> list by user of experiment key -> observation."""
    json.dump({"name": name, "answers": answers}, sys.stdout, ensure_ascii=False)
