"""Shared set-up for the flows: Prefect's environment must be in place before `import prefect`."""

from memebot.ops import prefect_env

prefect_env()
