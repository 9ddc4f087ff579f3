"""A listener that fails after ack() still leaves its envelope acknowledged and tells the person why."""

from __future__ import annotations

import logging

import pytest

from bot.ids import ActionId
from tests.fakes.http import Fault
from tests.slack.conftest import Harness
from tests.slack.flows import ephemeral_reply


class TestGuardedListeners:
    def test_a_slack_failure_after_ack_is_acked_reported_and_logged(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Regenerate whose preview update fails: the envelope is acked once, the clicker told, the log says why."""
        preview = harness.drafted()
        harness.slack.faults.add(Fault("5xx", times=None, path=r"chat\.update", status=500))
        with caplog.at_level(logging.WARNING, logger="bot.slack.guard"):
            sent = harness.click(ActionId.REGENERATE, message=preview)
            harness.settle(sent)
        harness.slack.faults.clear()
        assert len([a for a in harness.socket.acks if a.envelope_id == sent.envelope_id]) == 1
        assert "Slack" in ephemeral_reply(harness, sent)
        assert any(r.getMessage() == "listener refused or failed" for r in caplog.records)
