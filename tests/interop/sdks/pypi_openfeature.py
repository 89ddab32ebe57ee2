"""openfeature-sdk with openfeature-provider-ofrep (PyPI): each flag evaluated
remotely at POST /ofrep/v1/evaluate/flags/{key}."""

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from answers_io import read_fixture, write_answers

NAME = (
    f"openfeature-sdk {version('openfeature-sdk')}"
    f" + openfeature-provider-ofrep {version('openfeature-provider-ofrep')} (PyPI)"
)

# The provider checks the flag's JSON type against the getter's, so an app
# calls the getter of its flag's type.
GETTERS = {
    "boolean": lambda client, key, context: client.get_boolean_details(key, False, context),
    "string": lambda client, key, context: client.get_string_details(key, "", context),
    "integer": lambda client, key, context: client.get_integer_details(key, 0, context),
    "float": lambda client, key, context: client.get_float_details(key, 0.0, context),
    "object": lambda client, key, context: client.get_object_details(key, {}, context),
}


def observe(details):
    return {
        "value": details.value,
        "variant": details.variant,
        "reason": details.reason,
        "inExperiment": details.flag_metadata.get("in_experiment"),
        "errorCode": details.error_code,
    }


def evaluate_user(client, experiments, user):
    attributes = {name: value for name, value in user.items() if name != "id"}
    context = EvaluationContext(targeting_key=user["id"], attributes=attributes)
    return {e["key"]: observe(GETTERS[e["valueType"]](client, e["key"], context)) for e in experiments}


def evaluate(url, env, sdk_key, experiments, users):
    domain = f"sluice-{env}"
    headers = {"Authorization": f"Bearer {sdk_key}"}
    api.set_provider_and_wait(OFREPProvider(url, headers_factory=lambda: headers), domain)
    client = api.get_client(domain)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda user: evaluate_user(client, experiments, user), users))


def main():
    fixture = read_fixture()
    answers = {
        env: evaluate(fixture["url"], env, key, fixture["experiments"], fixture["users"])
        for env, key in fixture["sdkKeys"].items()
    }
    api.shutdown()
    write_answers(NAME, answers)


if __name__ == "__main__":
    main()
