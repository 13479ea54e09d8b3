"""Monte Carlo engine: resample a trade history, replay the firm's rules, summarise.

Pure numpy/numba; imports nothing from Django (a test proves it), so it can be
used from workers, the command line and benchmarks alike.
"""

from .config import EngineLimits, PayoutPolicy, Rules, SimulationConfig
from .errors import EngineValidationError
from .history import TradeHistory
from .result import Distribution, EquityFan, Histogram, PayoutResult, Probability, SimulationResult
from .simulation import SimulationCancelled, check, planned_samples, simulate, warm_up

__all__ = [
    "Distribution",
    "EngineLimits",
    "EngineValidationError",
    "EquityFan",
    "Histogram",
    "PayoutPolicy",
    "PayoutResult",
    "Probability",
    "Rules",
    "SimulationCancelled",
    "SimulationConfig",
    "SimulationResult",
    "TradeHistory",
    "check",
    "planned_samples",
    "simulate",
    "warm_up",
]
