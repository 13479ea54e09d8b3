"""Settings, split by topic; every value comes from the environment (see .env.example)."""

from .base import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .api import *  # noqa: F401,F403
from .celery import *  # noqa: F401,F403
from .redis import *  # noqa: F401,F403
from .kafka import *  # noqa: F401,F403
from .engine import *  # noqa: F401,F403
from .core_service import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
