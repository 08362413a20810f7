"""nncli's errors and the exit codes they map to.

Every failure a user can cause is one of these; the CLI prints `nncli: error: <message>` on one
line and exits with the class's code. Anything else is a bug and exits with INTERNAL.
"""

OK = 0
INTERNAL = 1
USAGE = 2
CONFIG = 3
DATA = 4
MODEL_FILE = 5
DIVERGED = 6
OUTPUT = 7
GRADIENT_PROBLEM = 8
INTERRUPTED = 130
TERMINATED = 143

EXIT_CODES = {
    OK: "success",
    INTERNAL: "internal error (a bug: please report it with --debug output)",
    USAGE: "bad command-line usage, or a missing optional extra (the message says what to install)",
    CONFIG: "bad config file or --set override",
    DATA: "bad or unreadable input data",
    MODEL_FILE: "bad, foreign or unreadable model file",
    DIVERGED: "training diverged (non-finite loss or gradient)",
    OUTPUT: "output cannot be written",
    GRADIENT_PROBLEM: "inspect-grads found a problem named by --fail-on",
    INTERRUPTED: "interrupted (SIGINT; train saves a checkpoint to --resume from)",
    TERMINATED: "terminated (SIGTERM; train saves a checkpoint to --resume from)",
}


class NncliError(Exception):
    """Base class: a user-facing error with a one-line message and an exit code."""

    exit_code = INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(NncliError):
    exit_code = USAGE


class MissingExtra(UsageError):
    """A command needs an optional extra that is not installed, such as nncli[plot]."""


class ConfigError(NncliError):
    exit_code = CONFIG


class DataError(NncliError):
    exit_code = DATA


class ModelFileError(NncliError):
    exit_code = MODEL_FILE


class TrainingDiverged(NncliError):
    exit_code = DIVERGED


class OutputError(NncliError):
    exit_code = OUTPUT
