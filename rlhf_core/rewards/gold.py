"""The demo's gold judge as a registered scorer (its code lives with the demo world it judges)."""

from rlhf_core.demo.gold import GoldScorer
from rlhf_core.rewards.base import register

register("gold")(GoldScorer)
