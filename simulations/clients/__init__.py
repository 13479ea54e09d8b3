from .core_service import CoreServiceClient, CoreServiceError, core_service_client

__all__ = ["CoreServiceClient", "CoreServiceError", "core_service_client"]
