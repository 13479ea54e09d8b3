"""Settings, split by topic; every value comes from the environment (see .env.example)."""

from .api import *  # noqa: F403
from .base import *  # noqa: F403
from .celery import *  # noqa: F403
from .core_service import *  # noqa: F403
from .database import *  # noqa: F403
from .engine import *  # noqa: F403
from .kafka import *  # noqa: F403
from .logs import *  # noqa: F403
from .metrics import *  # noqa: F403
from .redis import *  # noqa: F403
