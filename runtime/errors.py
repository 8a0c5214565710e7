"""Domain errors. Each message says what was expected and what arrived."""


class GADError(Exception):
    """A failure the user can act on; the CLI prints it as one line."""


class BackboneError(GADError, ValueError):
    """A backbone spec that cannot be resolved to a causal language model."""


class CheckpointError(GADError, ValueError):
    """A checkpoint that is missing, malformed, or built for something else."""


class ConfigError(GADError, ValueError):
    """Settings that contradict each other or the data."""
