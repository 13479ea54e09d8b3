"""Domain errors raised by services; the API's exception handler maps them to HTTP."""

from __future__ import annotations

from simulations.wire import camel_errors


class DomainError(Exception):
    """Base class: something a caller did or asked that the domain refuses."""


class InvalidInput(DomainError):
    """Input that fails validation, with reasons per field, keyed by the field's dotted
    path as the API spells it (``config.rules.maxDrawdown``, ``trades[3].pnl``)."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = camel_errors(errors)
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items()))


class JobNotFound(DomainError):
    pass


class ReportNotFound(DomainError):
    """No book report for that run date (yet)."""


class InvalidTransition(DomainError):
    """A state change the job's current state does not allow; nothing was changed."""


class IdempotencyConflict(DomainError):
    """The same Idempotency-Key was used before with a different request."""


class DependencyUnavailable(DomainError):
    """A service we depend on (database, broker, Core Service) is down."""


class WorkBudgetExceeded(DomainError):
    """The client's queued and unfinished work and the request's would exceed its budget."""

    def __init__(self, *, queued: int, asked: int, budget: int, own: bool):
        self.queued, self.asked, self.budget = queued, asked, budget
        limit = "this client's work budget" if own else "API_CLIENT_MAX_QUEUED_SAMPLES"
        super().__init__(
            f"{asked:.3g} more trade samples would put this client's queued work at {queued + asked:.3g},"
            f" above {limit} ({budget:.3g}); retry when some of its jobs have finished"
        )
