"""The Monte Carlo risk service's domain: models, services, the engine, the API."""

# The service's version: the OpenAPI schema's, the build-info metric's, the chart's
# appVersion (a test keeps helm/montecarlo/Chart.yaml equal).
__version__ = "1.0.0"
