"""Named rule sets: saved in versions, validated as the engine validates rules, and
applied to a job's config when a request, an event or the daily run names one."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from simulations.engine import EngineValidationError, SimulationConfig
from simulations.errors import InvalidInput
from simulations.models import RuleSet
from simulations.wire import snake_keys

logger = logging.getLogger(__name__)

RULE_SET_NAME = re.compile(r"[-A-Za-z0-9_]{1,64}")  # a slug, as the model's field takes it
NAME_RULE = "1 to 64 letters, digits, '-' or '_'"


def check_rule_set(
    *,
    rules: Mapping[str, Any],
    phases: list[Any] | None = None,
    starting_balance: float | None = None,
    payout: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Any], dict[str, Any] | None]:
    """The rules, the phases and the payout policy in the engine's snake_case, or
    :class:`InvalidInput` naming each bad field as the API spells it (``rules.maxDrawdown``,
    ``phases[1].rules...``, ``payout.split``)."""
    if not isinstance(rules, Mapping):
        raise InvalidInput({"rules": ["must be an object"]})
    if not isinstance(phases or [], list):
        raise InvalidInput({"phases": ["must be a list of phases"]})
    if payout is not None and not isinstance(payout, Mapping):
        raise InvalidInput({"payout": ["must be an object"]})
    clean, stages = snake_keys(dict(rules)), snake_keys(list(phases or []))
    policy = None if payout is None else snake_keys(dict(payout))
    settings: dict[str, Any] = {"rules": clean, "phases": stages, "payout": policy}
    if starting_balance is not None:
        settings["starting_balance"] = starting_balance
    try:
        SimulationConfig.from_dict(settings)
    except EngineValidationError as exc:
        raise InvalidInput(dict(exc.errors)) from None
    return clean, stages, policy


def save_rule_set(
    *,
    name: str,
    rules: Mapping[str, Any] | None = None,
    phases: list[Any] | None = None,
    starting_balance: float | None = None,
    payout: Mapping[str, Any] | None = None,
    description: str = "",
) -> RuleSet:
    """A new version of rule set ``name`` (the first is 1), unless nothing changed since
    the latest: then the latest. Jobs keep the version they were made with."""
    if not RULE_SET_NAME.fullmatch(name):
        raise InvalidInput({"name": [NAME_RULE]})
    clean, stages, policy = check_rule_set(
        rules=rules or {}, phases=phases, starting_balance=starting_balance, payout=payout
    )
    content = (clean, stages, starting_balance, policy, description)
    for _ in range(3):  # two first versions at once: the loser takes the next number
        with transaction.atomic():
            latest = RuleSet.objects.select_for_update().filter(name=name).order_by("-version").first()
            if latest is not None and (
                latest.rules, latest.phases, latest.starting_balance, latest.payout, latest.description
            ) == content:  # fmt: skip
                return latest
            try:
                with transaction.atomic():
                    saved = RuleSet.objects.create(
                        name=name,
                        version=latest.version + 1 if latest else 1,
                        rules=clean,
                        phases=stages,
                        starting_balance=starting_balance,
                        payout=policy,
                        description=description,
                    )
            except IntegrityError:
                continue
        logger.info("rule set %s saved", saved)
        return saved
    raise RuntimeError(f"rule set {name}: could not take a version number")


class RuleSets:
    """The latest version of each rule set named, read once per name: one lookup object
    serves a whole batch (an event poll, the daily run)."""

    def __init__(self) -> None:
        self._latest: dict[str, RuleSet | None] = {}

    def latest(self, name: str) -> RuleSet | None:
        if name not in self._latest:
            self._latest[name] = RuleSet.objects.filter(name=name).order_by("-version").first()
        return self._latest[name]

    def apply(
        self, name: str, config: Mapping[str, Any] | None, errors: dict[str, list[str]]
    ) -> tuple[RuleSet | None, dict[str, Any] | None]:
        """``config`` with the rule set's rules or phases (and account size, and payout
        policy) in it, and the version used; reasons go into ``errors`` under ``ruleSet``."""
        rule_set = self.latest(name)
        given = snake_keys(dict(config or {}))
        if rule_set is None:
            errors["ruleSet"] = [f"no rule set named {name!r}"]
            return None, None
        clashes = [name for name in ("rules", "phases") if name in given]
        if rule_set.starting_balance is not None and "starting_balance" in given:
            clashes.append("startingBalance")
        if rule_set.payout is not None and "payout" in given:
            clashes.append("payout")
        if clashes:
            errors["ruleSet"] = [f"the rule set sets {' and '.join(clashes)}: give them in one place, not both"]
            return None, None
        if rule_set.phases:
            given["phases"] = list(rule_set.phases)
        else:
            given["rules"] = dict(rule_set.rules)
        if rule_set.starting_balance is not None:
            given["starting_balance"] = rule_set.starting_balance
        if rule_set.payout is not None:
            given["payout"] = dict(rule_set.payout)
        return rule_set, given
