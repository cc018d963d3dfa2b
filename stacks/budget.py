"""A monthly cost budget per environment, sized from the capacity model, that warns on the alert topic."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.budgets_budget import (
    BudgetsBudget,
    BudgetsBudgetCostFilter,
    BudgetsBudgetNotification,
)
from constructs import Construct

from stacks.capacity import model, monthly_cost, prices_for
from stacks.config import EnvironmentConfig
from stacks.context import StackContext
from stacks.naming import Kind

ACTUAL_THRESHOLDS_PERCENT = (50, 80, 100)
"""Budgets notifies the alert topic when the month's actual spend reaches these shares of the limit. These
are what a new or ad-hoc environment gets: AWS needs about five weeks of usage before it forecasts."""
FORECAST_THRESHOLDS_PERCENT = (80, 100)
"""... and when the month's forecast reaches these (once AWS has enough history to forecast)."""
NOTIFICATIONS = (
    *(("ACTUAL", t) for t in ACTUAL_THRESHOLDS_PERCENT),
    *(("FORECASTED", t) for t in FORECAST_THRESHOLDS_PERCENT),
)
"""(notification type, percent of the limit) of every notification."""
MAX_NOTIFICATIONS = 5
"""The Budgets API reference says ten notifications per budget on its ``Notification`` page and five on
``CreateBudget``'s: the stricter bound."""


@dataclass(frozen=True)
class BudgetProps:
    alert_topic_arn: str
    """The topic the notifications go to."""
    topic_policy: TerraformResource
    """The topic's policy: Budgets checks, when the budget is created, that it may publish to the topic,
    so the budget is created after the policy that lets it."""


def monthly_limit_usd(config: EnvironmentConfig) -> int:
    """The model's monthly cost of the environment's declared fleet, times the configured margin, in
    whole dollars up (a plan shows no change unless the fleet, the settings or the prices change)."""
    costs = monthly_cost(model(config.fleet, config.pipeline), prices_for(config.region))
    return math.ceil(costs["total"] * config.budget_margin)


class CostBudget(Construct):
    """``aws_budgets_budget`` on the costs tagged with this environment (the provider's default tag
    ``Environment``, which must be activated as a cost allocation tag: docs/operations.md, first real
    deployment checklist), actual-spend and forecast notifications to the alert topic (its policy and the
    key policy let ``budgets.amazonaws.com`` publish)."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: BudgetProps) -> None:
        super().__init__(scope, id_)
        self.limit_usd = monthly_limit_usd(ctx.config)
        self.budget = BudgetsBudget(
            self,
            "budget",
            name=ctx.namer.name(Kind.BUDGET, "monthly"),
            budget_type="COST",
            limit_amount=str(self.limit_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filter=[
                BudgetsBudgetCostFilter(name="TagKeyValue", values=[f"user:Environment${ctx.namer.environment_suffix}"])
            ],
            notification=[
                BudgetsBudgetNotification(
                    comparison_operator="GREATER_THAN",
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    notification_type=kind,
                    subscriber_sns_topic_arns=[props.alert_topic_arn],
                )
                for kind, threshold in NOTIFICATIONS
            ],
            depends_on=[props.topic_policy],
        )
