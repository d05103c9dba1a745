"""The one place that owns the Logger and Metrics objects (Powertools)."""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
