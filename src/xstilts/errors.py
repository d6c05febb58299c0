"""The errors the CLI turns into a message and an exit status (a module of its own so that a command
that does not train need not import torch to catch them)."""


class DataError(RuntimeError):
    """A data source is missing or malformed; the message says how to fix it."""


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss); the message says where and what to try."""


class Preempted(RuntimeError):
    """A signal asked the job to stop; its state was saved and a rerun resumes from it."""
