from __future__ import annotations

from datetime import timedelta

from bot.analysis.suspects import find_rollbacks, rank_suspects
from bot.timeline.build import recognise_rollbacks
from bot.timeline.models import Deployment, Incident, Service
from tests import builders
from tests.builders import T0, deploy

TRIGGER = T0
WINDOW = timedelta(hours=6)
SHA_GOOD = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
SHA_BAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SHA_AUTH = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def incident(*services: str) -> Incident:
    return builders.incident(
        services=tuple(Service(id=f"PSVC{i}", name=name) for i, name in enumerate(services))
    )


def rank(*deployments: Deployment, services: tuple[str, ...] = ("customer-api", "auth-service")) -> list[int]:
    suspects = rank_suspects(
        deployments=deployments, incident=incident(*services), trigger_at=TRIGGER, window=WINDOW
    )
    return [s.deployment.id for s in suspects]


class TestRankSuspects:
    def test_the_sample_incident_names_the_pool_change_first(self) -> None:
        """PD-9876: the rolled-back customer-api deploy 1003 outranks the unrelated auth-service bump."""
        deployments = recognise_rollbacks(
            [
                deploy(1001, -19.5 * 60, SHA_GOOD),
                deploy(1002, -80, SHA_AUTH, service="auth-service", description="Bump structlog to 24.2"),
                deploy(1003, -18, SHA_BAD, status="inactive", status_at=TRIGGER + timedelta(minutes=48)),
                deploy(1004, 48, SHA_GOOD, description="Rollback to 7a6b5c4"),
            ]
        )
        suspects = rank_suspects(
            deployments=deployments,
            incident=incident("customer-api", "auth-service"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        assert [s.deployment.id for s in suspects] == [1003, 1002]
        top = suspects[0]
        assert top.reasons == (
            "deployed 18 min before the trigger",
            "same service: customer-api",
            "rolled back at 11:18 UTC",
        )
        assert top.minutes_before_trigger == 18
        assert suspects[1].reasons == ("deployed 1 h 20 min before the trigger", "same service: auth-service")

    def test_closer_deploys_rank_first(self) -> None:
        """With nothing else between them, the deploy nearer the trigger ranks higher."""
        assert rank(deploy(1, -120, "a" * 40), deploy(2, -10, "b" * 40)) == [2, 1]

    def test_the_incidents_service_outranks_a_closer_deploy_elsewhere(self) -> None:
        """A deploy of an affected service beats a closer deploy of an unaffected one."""
        same = deploy(1, -90, "a" * 40)
        other = deploy(2, -5, "b" * 40, service="billing")
        assert rank(same, other, services=("customer-api",)) == [1, 2]

    def test_a_rolled_back_deploy_ranks_first(self) -> None:
        """Being rolled back later outweighs closeness: someone already judged it bad."""
        rolled_back = deploy(1, -120, "a" * 40)
        closer = deploy(2, -10, "b" * 40, service="auth-service")
        rollback = deploy(3, 20, "c" * 40, rolls_back_to="c" * 40)  # restores a sha older than deploy 1
        assert rank(rolled_back, closer, rollback) == [1, 2]

    def test_a_failed_deploy_says_so(self) -> None:
        """A failure or error status raises the score and is one of the reasons."""
        suspects = rank_suspects(
            deployments=(deploy(1, -30, "a" * 40, status="failure"), deploy(2, -20, "b" * 40)),
            incident=incident("customer-api"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        assert [s.deployment.id for s in suspects] == [1, 2]
        assert "deploy status: failure" in suspects[0].reasons

    def test_deploys_at_or_after_the_trigger_are_not_suspects(self) -> None:
        """A deploy after the trigger (or at the same instant) cannot have caused it, whatever its signals."""
        assert rank(deploy(1, 0, "a" * 40, status="failure"), deploy(2, 5, "b" * 40, status="error")) == []

    def test_deploys_before_the_window_are_not_suspects(self) -> None:
        """Only deploys inside [trigger - window, trigger) are considered; the window's start is included."""
        assert rank(deploy(1, -6 * 60 - 1, "a" * 40), deploy(2, -6 * 60, "b" * 40)) == [2]

    def test_rollbacks_are_not_suspects(self) -> None:
        """A rollback before the trigger restores known-good code: it is not itself a suspect."""
        assert rank(deploy(1, -30, "a" * 40, rolls_back_to="a" * 40)) == []

    def test_a_rollback_to_a_later_deploys_sha_does_not_blame_the_earlier_one(self) -> None:
        """Rolling back to deploy 2 undoes only what came after it, so deploy 1 is not 'rolled back'."""
        first = deploy(1, -60, "a" * 40)
        second = deploy(2, -30, "b" * 40)
        third = deploy(3, -10, "c" * 40)
        rollback = deploy(4, 20, "b" * 40, rolls_back_to="b" * 40)
        suspects = rank_suspects(
            deployments=(first, second, third, rollback),
            incident=incident("customer-api"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        rolled = {s.deployment.id for s in suspects if any(r.startswith("rolled back") for r in s.reasons)}
        assert rolled == {3}

    def test_a_rollback_in_another_repo_does_not_count(self) -> None:
        """Only a rollback of the same repo marks a deploy as rolled back."""
        suspects = rank_suspects(
            deployments=(
                deploy(1, -30, "a" * 40),
                deploy(2, 20, "c" * 40, service="auth-service", rolls_back_to="c" * 40),
            ),
            incident=incident("customer-api"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        assert suspects[0].reasons == ("deployed 30 min before the trigger", "same service: customer-api")

    def test_turning_inactive_as_a_rollback_lands_counts_as_rolled_back(self) -> None:
        """A deploy made inactive right when a rollback happened was replaced by it."""
        replaced = deploy(1, -30, "a" * 40, status="inactive", status_at=TRIGGER + timedelta(minutes=21))
        # The rollback names a sha deployed in between, so only the inactive status ties it to deploy 1.
        between = deploy(2, -40, "b" * 40)
        later = deploy(3, -20, "c" * 40)
        rollback = deploy(4, 20, "c" * 40, rolls_back_to="c" * 40)
        suspects = rank_suspects(
            deployments=(between, replaced, later, rollback),
            incident=incident("customer-api"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        by_id = {s.deployment.id: s for s in suspects}
        assert "rolled back at 10:50 UTC" in by_id[1].reasons
        assert not any(r.startswith("rolled back") for r in by_id[3].reasons)

    def test_less_than_a_minute_before_reads_so(self) -> None:
        """A deploy seconds before the trigger says 'less than a minute', and counts 0 minutes."""
        (suspect,) = rank_suspects(
            deployments=(deploy(1, -0.5, "a" * 40),),
            incident=incident("customer-api"),
            trigger_at=TRIGGER,
            window=WINDOW,
        )
        assert suspect.reasons[0] == "deployed less than a minute before the trigger"
        assert suspect.minutes_before_trigger == 0


class TestFindRollbacks:
    def test_only_rollbacks_in_time_order(self) -> None:
        """find_rollbacks keeps the deploys marked as rollbacks, oldest first."""
        later = deploy(3, 60, "a" * 40, rolls_back_to="a" * 40)
        earlier = deploy(2, 48, "b" * 40, rolls_back_to="b" * 40)
        assert find_rollbacks([deploy(1, -18, "c" * 40), later, earlier]) == (earlier, later)
