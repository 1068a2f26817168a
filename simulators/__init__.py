"""Simulators: realistic synthetic feeds (scenarios, faults, sinks) for tests, demos and load work."""

from simulators.faults import FaultInjector
from simulators.generate import Window, generate, scenario_window
from simulators.run import RunReport, backfill, live
from simulators.scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "FaultInjector",
    "RunReport",
    "Scenario",
    "ScenarioError",
    "Window",
    "backfill",
    "generate",
    "live",
    "load_scenario",
    "scenario_window",
]
