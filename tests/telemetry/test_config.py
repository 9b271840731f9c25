"""Export is configured by the standard OTEL_* variables, and off (and free) without them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes

from cairn.errors import UsageError
from cairn.telemetry import export_status, semconv
from cairn.telemetry.config import config_from_env, shown_endpoint


def test_export_is_off_without_an_endpoint() -> None:
    assert config_from_env({}) is None
    assert config_from_env({"OTEL_SERVICE_NAME": "cairn-prod"}) is None
    assert export_status()["enabled"] is False


def test_an_endpoint_turns_traces_and_metrics_on_and_the_standard_switches_turn_them_off() -> None:
    on = config_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert on is not None
    assert (on.traces, on.metrics, on.endpoint) == (True, True, "http://collector:4318/v1/traces")
    assert on.capture_content is False
    no_metrics = config_from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"}
    )
    assert no_metrics is not None and (no_metrics.traces, no_metrics.metrics) == (True, False)
    traces_only = config_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/t"})
    assert traces_only is not None and (traces_only.traces, traces_only.metrics) == (True, False)
    assert traces_only.endpoint == "http://c:4318/v1/t"
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert config_from_env(disabled) is None


@pytest.mark.parametrize(("value", "on"), [("true", True), ("TRUE", True), ("false", False)])
def test_message_contents_are_captured_only_when_the_variable_says_so(value: str, on: bool) -> None:
    config = config_from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value,
        }
    )
    assert config is not None and config.capture_content is on


def test_an_unsupported_protocol_or_a_bad_number_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported"):
        config_from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )
    with pytest.raises(UsageError, match=r"OTEL_BSP_MAX_QUEUE_SIZE='lots' is not a whole number"):
        config_from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_BSP_MAX_QUEUE_SIZE": "lots"}
        )


def test_the_shown_endpoint_never_carries_credentials() -> None:
    assert shown_endpoint("https://user:pw@otlp.example:4318/v1/traces?key=abc#x") == (
        "https://otlp.example:4318/v1/traces"
    )


def test_every_gen_ai_name_is_one_the_semantic_conventions_define() -> None:
    defined = {
        value
        for module in (gen_ai_attributes, gen_ai_metrics, error_attributes)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str)
    }
    ours = [*semconv.GEN_AI_NAMES, semconv.ERROR_TYPE]
    ours += [semconv.METRIC_TOKEN_USAGE, semconv.METRIC_OPERATION_DURATION]
    assert [name for name in ours if name not in defined] == []
    operations = {v.value for v in gen_ai_attributes.GenAiOperationNameValues}
    assert {semconv.INVOKE_AGENT, semconv.CHAT, semconv.EXECUTE_TOOL} <= operations
    providers = {v.value for v in gen_ai_attributes.GenAiProviderNameValues}
    assert {"anthropic", "openai", "gcp.gemini"} <= providers


def test_with_export_off_a_run_imports_no_opentelemetry_sdk(tmp_path: Path) -> None:
    """In a fresh interpreter (other tests import the SDK): fire a persisted run with no
    OTEL_* variable; neither the SDK, the exporter nor Cairn's pipeline is loaded."""
    script = textwrap.dedent(
        """
        import sys, anyio
        from cairn.config import Settings
        from cairn.domain.agents import ModelSettings
        from cairn.services.agents import AgentSpec, create_agent
        from cairn.services.app import App
        from cairn.services.runs import fire_agent

        async def main():
            app = App(Settings(home=HOME, database_url=URL))
            await create_agent(app, "default", AgentSpec(slug="a", system_prompt="x",
                model_settings=ModelSettings(script="hello")))
            run = await fire_agent(app, "default", "a", {"n": 1})
            assert run.status == "succeeded", run.error_message
            assert app.runner.observer is None
            app.close()

        anyio.run(main)
        loaded = sorted(m for m in sys.modules if m.startswith(
            ("opentelemetry.sdk", "opentelemetry.exporter", "cairn.telemetry.otlp",
             "cairn.telemetry.spans", "cairn.telemetry.metrics", "cairn.telemetry.wire")))
        print("LOADED", loaded)
        """
    )
    home = tmp_path / "home"
    home.mkdir()
    prelude = f"from pathlib import Path\nHOME = Path({str(home)!r})\n"
    prelude += f"URL = {'sqlite:///' + str(tmp_path / 'ledger.db')!r}\n"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", prelude + script],
        capture_output=True,
        text=True,
        env=env | {"CAIRN_HOME": str(home)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout
