"""The workflow sandbox, with the SDK's per-payload bookkeeping taken out of it.

Around every workflow activation the worker encodes and decodes payloads, and for each
payload sequence it asks the workflow instance which serialization context applies: the
workflow's own, an activity's or a child's. The stock sandbox answers each question by
re-entering the sandbox: it compiles a code string and applies its importer (swapping
`sys.modules` and the restricted builtins) around a lookup of two dicts. That costs about
40 µs; one case lifecycle asks it some hundreds of times, up to a fifth of the worker's CPU.

`LeanSandboxedWorkflowRunner` runs workflow code in the stock sandbox, with the same
restrictions and the same passthrough modules. Only these two questions are answered by
calling the sandboxed instance's lookup directly: it reads the pending commands and builds
a context from `temporalio.converter`, which the sandbox passes through anyway, so the
answer is the same object the stock path returns (tests/unit/test_sandbox.py shows it for
each kind of command). The code strings the sandbox runs are compiled once per process.

This leans on the SDK's private `_Instance`. `lean_instance_supported` checks, when the
runner is built, that the names it uses are still there; if an SDK upgrade moved them, the
worker falls back to the stock path and logs so, rather than misbehaving.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from importlib.util import spec_from_file_location
from types import CodeType, ModuleType
from typing import Any

import temporalio.workflow
from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, _command_aware_visitor
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

# The name the stock sandbox binds its in-sandbox entry point to, once the instance exists.
_IN_SANDBOX = "__temporal_in_sandbox"


@lru_cache(maxsize=64)
def _compiled(code: str) -> CodeType:
    # The sandbox's code strings are a handful of constants and one import line per
    # workflow type, so the cache stays this small.
    return compile(code, "workflow_sandbox.py", "exec")


class _LeanInstance(_Instance):
    """The stock sandboxed instance; see the module docstring for what differs."""

    def _run_code(self, code: str, **extra_globals: Any) -> None:
        # As the SDK's, but with the code compiled once instead of on every activation.
        scope = self.globals_and_locals
        scope.update(extra_globals)
        try:
            temporalio.workflow.unsafe._set_in_sandbox(True)
            self._current_thread_id = threading.get_ident()
            exec(_compiled(code), scope, scope)  # noqa: S102 - the SDK's own code strings
        finally:
            temporalio.workflow.unsafe._set_in_sandbox(False)
            self._current_thread_id = None
            for name in extra_globals:
                scope.pop(name, None)

    def get_serialization_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> SerializationContext | None:
        in_sandbox: Any = self.globals_and_locals.get(_IN_SANDBOX)
        if in_sandbox is None:  # not created (yet): the stock path says why
            return super().get_serialization_context(command_info)
        context: SerializationContext | None = in_sandbox.get_serialization_context(command_info)
        return context

    def get_external_store_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> StorageDriverStoreContext:
        in_sandbox: Any = self.globals_and_locals.get(_IN_SANDBOX)
        if in_sandbox is None:
            return super().get_external_store_context(command_info)
        context: StorageDriverStoreContext = in_sandbox.get_external_store_context(command_info)
        return context


def lean_instance_supported() -> bool:
    """Whether this SDK's sandbox still has what `_LeanInstance` overrides and reads."""
    names = ("_run_code", "get_serialization_context", "get_external_store_context")
    if not all(callable(getattr(_Instance, name, None)) for name in names):
        return False
    # The instance binds its entry point under this name in one of its code strings.
    constants = _Instance._create_instance.__code__.co_consts
    return any(isinstance(c, str) and f"{_IN_SANDBOX} = " in c for c in constants)


class _ReadOnceLoader(SourceFileLoader):
    """A module file's loader that reads and unmarshals its code once per process."""

    def __init__(self, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self._code: CodeType | None = None

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._code
        if code is None:
            code = self._code = super().get_code(fullname)
        return code


class _SandboxImportsReadOnce(MetaPathFinder):
    """Finds the modules the sandbox imports anew for every run with their code kept.

    The sandbox gives each new run (a start, a cache miss, a replay, a query of an evicted
    run) its own `sys.modules`, so it imports the workflow's module and every module not
    passed through again: it looked for each file, read its bytecode and unmarshalled it,
    about a quarter of creating a run. This finder answers only while sandboxed code runs,
    for plain source modules, with a loader that keeps the code object it read first. The
    module is still executed anew in each sandbox, as before; only the file is not read
    again, so a worker also runs the code it started with, as its unsandboxed imports do.
    """

    def __init__(self) -> None:
        self._found: dict[str, tuple[_ReadOnceLoader, list[str] | None]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not temporalio.workflow.unsafe.in_sandbox():
            return None
        found = self._found.get(fullname)
        if found is None:
            spec = PathFinder.find_spec(fullname, path)
            if spec is None or type(spec.loader) is not SourceFileLoader or not spec.origin:
                return None  # not a plain source file: the usual finders take it
            locations = spec.submodule_search_locations
            found = (
                _ReadOnceLoader(fullname, spec.origin),
                (None if locations is None else list(locations)),
            )
            self._found[fullname] = found
        loader, locations = found
        return spec_from_file_location(
            fullname,
            loader.path,
            loader=loader,
            submodule_search_locations=None if locations is None else list(locations),
        )


_read_once = _SandboxImportsReadOnce()


@dataclass(frozen=True)
class LeanSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """The stock sandbox, answering the worker's context questions without re-entering it,
    and reading each module it imports from its file once per process."""

    def __post_init__(self) -> None:
        if _read_once not in sys.meta_path:
            sys.meta_path.insert(0, _read_once)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _LeanInstance(det, self.runner_class, self.restrictions)
