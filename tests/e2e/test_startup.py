"""Start-up failures of `python -m bot`: one clear line on stderr and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.bot_process import clean_env, run_to_exit
from tests.e2e.conftest import Workspace, bot_settings
from tests.fakes.slack_web import BOT_TOKEN

EXIT_SETTINGS = 2


def env_for(workspace: Workspace, tmp_path: Path, **overrides: str) -> dict[str, str]:
    settings = bot_settings(
        workspace.fakes,
        parent_id=workspace.parent.id,
        database_url=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        cloud=True,
    )
    return clean_env({**settings, **overrides})


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


class TestStartup:
    def test_a_bot_token_in_place_of_the_app_token_is_named(
        self, workspace: Workspace, tmp_path: Path
    ) -> None:
        """Slack refusing SLACK_APP_TOKEN at apps.connections.open: exit 2, the setting named, no token echoed."""
        run = run_to_exit(env=env_for(workspace, tmp_path, SLACK_APP_TOKEN=BOT_TOKEN), cwd=tmp_path)
        assert run.code == EXIT_SETTINGS, run.stderr
        assert last_line(run.stderr).startswith(
            "error: Slack refused SLACK_APP_TOKEN (not_allowed_token_type) while trying to open a Socket Mode "
            "connection: it must be an app-level token (xapp-…)"
        )
        assert "Traceback" not in run.stderr and BOT_TOKEN not in run.stderr
        assert not workspace.fakes.socket.live_connections()

    def test_a_refused_bot_token_is_named(self, workspace: Workspace, tmp_path: Path) -> None:
        """Slack refusing SLACK_BOT_TOKEN at auth.test: exit 2 and one line naming the setting."""
        wrong = "xoxb-7000000001-7000000000002-NotTheRightToken000"
        run = run_to_exit(env=env_for(workspace, tmp_path, SLACK_BOT_TOKEN=wrong), cwd=tmp_path)
        assert run.code == EXIT_SETTINGS, run.stderr
        assert last_line(run.stderr) == (
            "error: Slack refused SLACK_BOT_TOKEN (invalid_auth) while trying to check the bot token "
            "(auth.test): it must be the Bot User OAuth Token (xoxb-…) of the installed app."
        )
        assert "Traceback" not in run.stderr and wrong not in run.stderr
        assert workspace.fakes.slack.requests_to(r"/api/apps\.connections\.open$") == []

    def test_an_unreachable_slack_is_one_line(self, workspace: Workspace, tmp_path: Path) -> None:
        """Nothing listening at SLACK_API_URL: exit 1 and what was tried, after the client's retries."""
        env = env_for(workspace, tmp_path, SLACK_API_URL="http://127.0.0.1:9/api/", HTTP_MAX_RETRIES="1")
        run = run_to_exit(env=env, cwd=tmp_path)
        assert run.code == 1, run.stderr
        assert last_line(run.stderr).startswith(
            "error: Slack was unreachable while trying to check the bot token (auth.test):"
        )
        assert "Traceback" not in run.stderr

    def test_an_unknown_log_level_is_a_settings_error(self, workspace: Workspace, tmp_path: Path) -> None:
        """LOG_LEVEL=verbose is refused with the settings' own message, before anything starts."""
        run = run_to_exit(env=env_for(workspace, tmp_path, LOG_LEVEL="verbose"), cwd=tmp_path)
        assert run.code == EXIT_SETTINGS, run.stderr
        assert run.stderr.strip() == (
            "error: Invalid settings — LOG_LEVEL: Value error, expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
        assert not (tmp_path / "bot.sqlite3").exists()
