"""Builds every stack of the platform into a cdktf app: the state bootstrap and one per environment."""

from __future__ import annotations

from cdktf import App, TerraformStack

from stacks.bootstrap import StateBootstrapStack
from stacks.config import Platform
from stacks.naming import BOOTSTRAP_STACK_ID, Namer
from stacks.tap_stack import TapStack, TapStackProps


def build(app: App, platform: Platform) -> dict[str, TerraformStack]:
    """Add the bootstrap stack and one :class:`TapStack` per environment to ``app``; return them by id."""
    stacks: dict[str, TerraformStack] = {
        BOOTSTRAP_STACK_ID: StateBootstrapStack(app, BOOTSTRAP_STACK_ID, platform.state)
    }
    for env in platform.environments:
        stack_id = Namer(env.suffix).stack_id()
        stacks[stack_id] = TapStack(
            app,
            stack_id,
            TapStackProps(
                environment_suffix=env.suffix,
                config=env.config,
                region=env.config.region,
                state=platform.state,
            ),
        )
    return stacks
