"""The monitor's side of the recovery ladder (``memlens.remedies``): opt-in wiring and history.

The ladder subscribes to the monitor's events (leak alerts, the critical
threshold) and runs on its own ``memlens-recovery`` thread; the monitor keeps the
ladder so its history is one call away and appears under ``/debug/memory``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.remedies.ladder import RecoveryLadder
    from memlens.service.monitor import Monitor


def enable(
    mon: Monitor, ladder: RecoveryLadder | None, *, on_leak: bool, on_critical: bool
) -> RecoveryLadder:
    """Attach ``ladder`` (default: a new one aiming at the warning threshold) to ``mon``."""
    from memlens.remedies.ladder import RecoveryLadder

    if ladder is None and mon.recovery is not None:
        return mon.recovery
    disable(mon)
    mon.recovery = ladder or RecoveryLadder(target_bytes=mon.config.warning_bytes)
    mon._recovery_detach = mon.recovery.attach(mon, on_leak=on_leak, on_critical=on_critical)
    return mon.recovery


def disable(mon: Monitor) -> None:
    """Stop triggering the ladder; its history stays readable."""
    if mon._recovery_detach is not None:
        mon._recovery_detach()
        mon._recovery_detach = None


def history(mon: Monitor) -> list[dict[str, Any]]:
    """The ladder's kept runs, oldest first, as plain data."""
    return [run.to_dict() for run in mon.recovery.history] if mon.recovery is not None else []
