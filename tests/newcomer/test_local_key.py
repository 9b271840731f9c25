"""A local owner key goes only to the server that issued it (issue 15, point 10)."""

from __future__ import annotations

from pathlib import Path

from tests.newcomer.serving import cairn, clean_env, recorder, serve


def test_the_local_key_goes_to_its_own_server_and_to_no_other(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    with serve(home_a) as ours, serve(home_b) as other, recorder() as stranger:
        local_token = next((home_a / "local-keys").rglob("default")).read_text().strip()
        env = clean_env(home_a)

        mine = cairn("agent", "list", "--json", env=env | {"CAIRN_URL": ours.url})
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout.strip() == "[]"

        for url in (other.url, stranger.url):
            refused = cairn("agent", "fire", "support", env=env | {"CAIRN_URL": url}, timeout_s=30)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr.count("\n") == 1
            assert "is not the Cairn server started from CAIRN_HOME" in refused.stderr
            assert local_token not in refused.stderr

        secret_part = local_token.split(".", 1)[1]
        assert stranger.requests, "the CLI asked the stranger to prove who it is"
        for _method, path, headers in stranger.requests:
            assert path.startswith("/local-identity?nonce=")
            assert "authorization" not in {name.lower() for name in headers}
            assert secret_part not in str(headers) and secret_part not in path


def test_an_explicit_api_key_is_sent_wherever_cairn_url_says(tmp_path: Path) -> None:
    with recorder() as stranger:
        env = clean_env(tmp_path / "home") | {"CAIRN_URL": stranger.url, "CAIRN_API_KEY": "k.s"}
        result = cairn("agent", "list", env=env, timeout_s=30)
        assert result.returncode != 0
        assert [h.get("Authorization") for _m, _p, h in stranger.requests] == ["Bearer k.s"]
