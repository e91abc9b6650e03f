"""NetDB: the tasks and memories models of one Redex behind one handle.

::

    from netmesh import NetDB, Redex

    with Redex() as redex, NetDB(redex, origin_hash, with_tasks=True, with_memories=True) as db:
        db.tasks.create(1, "write the report")
        db.memories.store(1, "the sky is blue", ["sky"])
        bundle = db.snapshot_bundle()          # both models, cut at one point

    with Redex() as redex, NetDB.from_bundle(redex, origin_hash, bundle,
                                             with_tasks=True, with_memories=True) as db:
        db.tasks.find_many()

Opening is failure-atomic (when one model cannot open, nothing stays open);
a bundle naming a model the NetDB does not enable raises
CortexSnapshotError. The models are the ordinary :class:`~netmesh.Tasks`
and :class:`~netmesh.Memories` (every query, watch and write is theirs),
lent by the NetDB: closing the NetDB frees them.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from ._ffi import BytesLike, buf, check, ffi, lib, new_bytes, take_bytes
from ._handle import _Handle
from .cortex import ErrorPolicy, Memories, ModelKind, Tasks, _check_query_u64
from .errors import CortexInvalidConfigError, InvalidArgumentError
from .redex import Redex

__all__ = ["NetDB"]


def netdb_config_json(
    *, with_tasks: bool, with_memories: bool, persistent: bool, policy: Optional[ErrorPolicy]
) -> bytes:
    """``net_netdb_open``'s configuration JSON."""
    config = {"with_tasks": with_tasks, "with_memories": with_memories, "persistent": persistent}
    for key, value in config.items():
        if not isinstance(value, bool):
            raise CortexInvalidConfigError(
                lib.NET_ERR_CORTEX_INVALID_CONFIG, f"{key}: expected True or False, got {value!r}"
            )
    cfg: Dict[str, Any] = dict(config)
    if policy is not None:
        if policy not in ("stop", "log_and_continue"):
            raise CortexInvalidConfigError(
                lib.NET_ERR_CORTEX_INVALID_CONFIG, f'policy: expected "stop" or "log_and_continue", got {policy!r}'
            )
        cfg["policy"] = policy
    return json.dumps(cfg, separators=(",", ":")).encode()


class NetDB(_Handle):
    """The tasks and memories models of one :class:`~netmesh.Redex`
    (``net_netdb_t``), opened together, bundled together and closed
    together. ``NetDB(redex, origin_hash, with_tasks=..., with_memories=...,
    persistent=..., policy=...)`` opens the enabled models, tasks first,
    each replaying its log before this returns; on an error nothing stays
    open. Errors: CortexInvalidConfigError, RedexNoPersistentDirError
    (``persistent=True`` on a memory-only Redex), RedexLockedError,
    CortexHaltedError (a fold stopped while replaying; ``policy=
    "log_and_continue"`` skips what it cannot fold). A context manager;
    thread-safe."""

    __slots__ = ("_tasks", "_memories")
    _kind = "NetDB"
    _free = staticmethod(lib.net_netdb_free)

    def __init__(
        self,
        redex: Redex,
        origin_hash: int,
        *,
        with_tasks: bool = False,
        with_memories: bool = False,
        persistent: bool = False,
        policy: Optional[ErrorPolicy] = None,
        _bundle: Optional[BytesLike] = None,
    ) -> None:
        super().__init__(None)
        self._tasks: Optional[Tasks] = None
        self._memories: Optional[Memories] = None
        if not isinstance(redex, Redex):
            raise TypeError(f"redex must be a Redex, not {type(redex).__name__}")
        origin = _check_query_u64(origin_hash, "origin_hash")
        config = netdb_config_json(
            with_tasks=with_tasks, with_memories=with_memories, persistent=persistent, policy=policy
        )
        out = ffi.new("net_netdb_t **")
        manager = redex._handle()
        if _bundle is None:
            check(lib.net_netdb_open(manager, origin, config, len(config), out))
        else:
            data, n = buf(_bundle, "bundle")
            check(lib.net_netdb_open_from_bundle(manager, origin, config, len(config), data, n, out))
        self._ptr = out[0]
        try:
            if with_tasks:
                self._tasks = Tasks._lent(self._model(ModelKind.TASKS), self, origin)
            if with_memories:
                self._memories = Memories._lent(self._model(ModelKind.MEMORIES), self, origin)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_bundle(cls, redex: Redex, origin_hash: int, bundle: BytesLike, **config: Any) -> "NetDB":
        """Opens from a bundle (:meth:`snapshot_bundle`): each model in it is
        restored and folds the events its log has after the bundle's cut;
        each enabled model not in it opens fresh. ``config`` as for the
        constructor. CortexSnapshotError when the bundle does not decode or
        holds a model ``config`` does not enable."""
        return cls(redex, origin_hash, _bundle=bytes(bundle), **config)

    def _model(self, kind: ModelKind) -> Any:
        out = ffi.new("net_model_t **")
        check(lib.net_netdb_model(self._handle(), int(kind), out))
        return out[0]

    @property
    def tasks(self) -> Tasks:
        """The tasks model (the same object every time); InvalidArgumentError
        when the NetDB was opened without it."""
        if self._tasks is None:
            raise InvalidArgumentError(
                lib.NET_ERR_INVALID_ARGUMENT, "this NetDB was opened without the tasks model (with_tasks=True)"
            )
        return self._tasks

    @property
    def memories(self) -> Memories:
        """The memories model, as :attr:`tasks` is the tasks model."""
        if self._memories is None:
            raise InvalidArgumentError(
                lib.NET_ERR_INVALID_ARGUMENT, "this NetDB was opened without the memories model (with_memories=True)"
            )
        return self._memories

    def snapshot_bundle(self) -> bytes:
        """Both models cut at one point (STORAGE.md §12 bytes): every write
        that returned before the call is in it, and a write in it comes
        with every write, to either model, that returned before that write
        began. Open it with :meth:`from_bundle`."""
        out = new_bytes()
        check(lib.net_netdb_snapshot(self._handle(), out))
        return take_bytes(out)

    def shutdown(self) -> None:
        """Stops both folds and closes the models' RedEX files, syncing them
        (``net_netdb_close``), tasks first; raises the first failure.
        Queries keep answering from the last state; writes fail.
        Idempotent. The NetDB still needs :meth:`close`."""
        check(lib.net_netdb_close(self._handle()))

    def close(self) -> None:
        """Frees the NetDB and its models (``net_netdb_free``): later calls
        on it or on its :attr:`tasks` / :attr:`memories` raise
        ShuttingDownError; calls blocked on the models wake. Idempotent and
        thread-safe; raises BusyError when calls were still running after
        5 s or closing a model failed."""
        for model in (self._tasks, self._memories):
            if model is not None:
                model.close()
        super().close()

    def __repr__(self) -> str:
        models = [name for name, m in (("tasks", self._tasks), ("memories", self._memories)) if m is not None]
        state = " closed" if self.closed else ""
        return f"<NetDB {'+'.join(models) or 'no models'}{state}>"

