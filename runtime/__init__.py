"""flowactor's runtime: flows, states, the flow-run actor, stores and the `Runtime`."""

from .context import RunContext, check_cancelled, get_run_context, get_run_logger
from .errors import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    FlowRunNotFound,
    FlowRunTimeoutError,
    ParameterTypeError,
    RuntimeClosed,
    UnfinishedRun,
)
from .flows import Flow, flow
from .models import FlowRun
from .runtime import FlowRunHandle, Runtime
from .states import (
    FINAL_STATES,
    AwaitingRetry,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    NotReady,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    Suspended,
    TimedOut,
)
from .stores import MemoryStore, Store

__all__ = [
    "FINAL_STATES",
    "AwaitingRetry",
    "Cancelled",
    "CancelledRun",
    "Cancelling",
    "Completed",
    "Crashed",
    "CrashedRun",
    "Failed",
    "FailedRun",
    "Flow",
    "FlowRun",
    "FlowRunHandle",
    "FlowRunNotFound",
    "FlowRunTimeoutError",
    "MemoryStore",
    "NotReady",
    "ParameterTypeError",
    "Paused",
    "Pending",
    "RunContext",
    "Running",
    "Runtime",
    "RuntimeClosed",
    "Scheduled",
    "State",
    "StateType",
    "Store",
    "Suspended",
    "TimedOut",
    "UnfinishedRun",
    "check_cancelled",
    "flow",
    "get_run_context",
    "get_run_logger",
]
