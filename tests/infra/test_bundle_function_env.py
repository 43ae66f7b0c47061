"""PythonFunction gives every function Powertools' service name and metrics namespace,
merged into the environment the stack passes (the stack's own value wins)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from data_stack.constructs import python_function as pf


def test_powertools_settings_are_merged_into_the_given_environment():
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})  # no bundling: this is about the template
    stack = cdk.Stack(app, "EnvProbe")
    pf.PythonFunction(stack, "Connect", name="ws_connect", architecture="x86_64", environment={"CONNECTIONS_TABLE": "conns"})
    pf.PythonFunction(
        stack, "Disconnect", name="ws_disconnect", architecture="x86_64", environment={"POWERTOOLS_SERVICE_NAME": "chosen-by-the-stack"}
    )
    pf.PythonFunction(stack, "OnEvent", name="msk_connectivity", architecture="x86_64", handler="handler.on_event")  # no environment given
    t = Template.from_stack(stack)
    envs = {
        fn["Properties"]["Handler"] + ":" + fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: fn["Properties"][
            "Environment"
        ]["Variables"]
        for fn in t.find_resources("AWS::Lambda::Function").values()
    }
    assert envs == {
        "handler.handler:ws_connect": {
            "CONNECTIONS_TABLE": "conns",
            "POWERTOOLS_SERVICE_NAME": "ws_connect",
            "POWERTOOLS_METRICS_NAMESPACE": pf.METRICS_NAMESPACE,
        },
        "handler.handler:chosen-by-the-stack": {
            "POWERTOOLS_SERVICE_NAME": "chosen-by-the-stack",
            "POWERTOOLS_METRICS_NAMESPACE": pf.METRICS_NAMESPACE,
        },
        "handler.on_event:msk_connectivity": {
            "POWERTOOLS_SERVICE_NAME": "msk_connectivity",
            "POWERTOOLS_METRICS_NAMESPACE": pf.METRICS_NAMESPACE,
        },
    }
    t.has_resource_properties("AWS::Lambda::Function", {"Runtime": "python3.12", "Architectures": Match.array_with(["x86_64"])})
