"""growthbook (PyPI): features from GET /api/features/{sdk key}, evaluated
locally by the SDK."""

import logging
from importlib.metadata import version

from growthbook import GrowthBook

from answers_io import read_fixture, write_answers

NAME = f"growthbook {version('growthbook')} (PyPI)"

# Experiments an environment does not serve are asked about too: each such
# question would log "Unknown feature".
logging.getLogger("growthbook.core").setLevel(logging.ERROR)


def observe(result):
    experiment = result.experimentResult
    return {
        "value": result.value,
        "source": result.source,
        "variationId": experiment.variationId if experiment else None,
        "inExperiment": experiment.inExperiment if experiment else None,
    }


def evaluate(url, env, sdk_key, experiments, users):
    gb = GrowthBook(api_host=url, client_key=sdk_key)
    gb.load_features()
    if not gb.get_features():
        raise SystemExit(f"{NAME} loaded no {env} features from {url}")
    answers = []
    for user in users:
        # A copy: destroy() clears the dict last given to set_attributes.
        gb.set_attributes(dict(user))
        answers.append({e["key"]: observe(gb.eval_feature(e["key"])) for e in experiments})
    gb.destroy()
    return answers


def main():
    fixture = read_fixture()
    answers = {
        env: evaluate(fixture["url"], env, key, fixture["experiments"], fixture["users"])
        for env, key in fixture["sdkKeys"].items()
    }
    write_answers(NAME, answers)


if __name__ == "__main__":
    main()
