"""Model-backend keys per sandbox: stored encrypted, preferred over the environment."""

from __future__ import annotations

import pytest

from cairn.services.app import App, SandboxCredentials
from cairn.store.schema import credentials
from tests.cli.conftest import Cli


def test_a_stored_key_wins_over_the_environment_and_removing_it_falls_back(
    cli: Cli, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    looked_up = SandboxCredentials(app, "default")
    assert looked_up.api_key("anthropic") == "env-key"
    stored = cli("credential", "set", "anthropic", "--api-key", "sk-ant-stored-secret")
    assert stored.exit_code == 0 and "sk-ant" not in stored.stdout
    assert looked_up.api_key("anthropic") == "sk-ant-stored-secret"
    assert SandboxCredentials(app, "other").api_key("anthropic") == "env-key"
    listed = cli("credential", "list", "--json")
    assert [c["backend"] for c in listed.json()] == ["anthropic"]
    assert "sk-ant" not in listed.stdout
    with app.store.connect() as conn:
        (ciphertext,) = conn.execute(credentials.select()).one()[2:3]
    assert "sk-ant" not in ciphertext
    assert cli("credential", "remove", "anthropic", "--yes").exit_code == 0
    assert looked_up.api_key("anthropic") == "env-key"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["credential", "set", "gpt9000", "--api-key", "x"], "unknown model backend 'gpt9000'"),
        (["credential", "set", "openai", "--api-key", " "], "the API key is empty"),
        (["credential", "remove", "google", "--yes"], "no stored credential for 'google'"),
    ],
)
def test_bad_credential_input_is_one_line(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and message in result.stderr
