"""Guardians and incidents in the demo: a guardian stops the robot and lets it go again; the department is told.

The guardian e-stops as a real one would, with ``ftrobot guardian …`` on the command line (a signed command,
the robot's answer and its safety state printed, the exit status checked). The RESETs are signed the same way
(:func:`~ftrobot_guard.cli.guardian_commands.signed_command`) and sent by the demo's controller node, which
also replays one off the wire: on these two cores each new command-line process (a new DDS participant) stalled
the simulator's callbacks ~0.33 s, long enough for its hardware watchdog to damp a standing robot. The department's
side is the monitor running in the demo's process and ``ftrobot dept ack``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.cli.demo_checklist import Checklist, run_cli, wait_for
from ftrobot_guard.cli.demo_guard import ARM_JOINTS, ARM_MOTION_S, GuardDemo, lowering_checks
from ftrobot_guard.cli.guardian_commands import signed_command
from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.trust.dev_credentials import GuardianFiles
from ftrobot_guard.trust.keys import load_private_key

NO_JUMP_RAD = 0.05          # the largest joint motion a RESET may cause by itself (re-anchored targets)
ARM_LEAD_S = 1.0            # the arms move this long before the guardian presses
RESET_TRIES_S = 15.0        # how long the guardian keeps trying a RESET once the rogue publisher is gone
CLI_WAIT_S = 30             # each wait of a guardian's command (a busy 2-core machine starts it slowly)


@dataclass(frozen=True)
class GuardianDesk:
    """What the demo's guardian and officer need: their files, the robot's address, the environment."""

    guardian: GuardianFiles
    officer: GuardianFiles
    namespace: str
    identity_number: str
    env: dict[str, str]

    def cli(self, action: str, *extra: str, who: GuardianFiles | None = None,
            key: Path | None = None) -> tuple[int, str]:
        signer = who or self.guardian
        return run_cli(["guardian", action, "--id", self.identity_number, "--key", str(key or signer.private_key),
                        "--guardian-id", signer.guardian_id, "--timeout", str(CLI_WAIT_S), *extra], self.env)


def guardian_estop_step(demo: GuardDemo, checks: Checklist, desk: GuardianDesk, processes: tuple[Any, ...]) -> None:
    """The arms swing; the guardian e-stops from the command line; the robot stops and is lowered to rest."""
    origin = demo.joint_positions(ARM_JOINTS)
    if origin is None:
        checks.check(False, "the guardian's e-stop: no joint_states to start from")
        return
    moving = threading.Thread(target=demo.move_arms, args=(ARM_MOTION_S + ARM_LEAD_S, origin), daemon=True)
    moving.start()
    time.sleep(ARM_LEAD_S)
    code, output = desk.cli("estop", "--reason", "visitor too close to the swinging arms")
    stopped = time.monotonic()
    checks.check(code == 0 and "accepted" in output and demo.mode() == "ESTOP",
                 "the guardian's signed ESTOP from the command line, while the arms move: accepted, the robot in "
                 "ESTOP (latched); the command's exit status says so", f"exit {code}, mode {demo.mode()}")
    moving.join()
    lowering_checks(demo, checks, processes, stopped)


def _incidents_of(monitor: Any, identity_number: str) -> list[Any]:
    return [i for i in monitor.open_incidents() if i.fields.identity_number == identity_number]


def incident_seen_step(demo: GuardDemo, checks: Checklist, desk: GuardianDesk, monitor: Any,
                       alerts: Callable[[], list[Any]]) -> None:
    """The department has the signed incident report; a forged RESUME is refused and changes nothing."""
    def estop_reported() -> bool:
        return any("ESTOP" in i.fields.what_happened or "ESTOP" in i.fields.measures_taken
                   for i in _incidents_of(monitor, desk.identity_number))

    checks.wait(lambda: estop_reported() and any(a.kind.name == "INCIDENT" and a.raised for a in alerts()), 10.0,
                "the department has the robot's signed incident report (verified) and an INCIDENT alert")
    for incident in _incidents_of(monitor, desk.identity_number):
        fields = incident.fields
        print(f"    {fields.incident_id}: {fields.what_happened}")
        print(f"      measures: {fields.measures_taken}; guardian on duty {fields.guardian_on_duty} "
              f"({fields.contact})")
    code, output = desk.cli("resume", key=desk.officer.private_key)   # someone else's key under the guardian's id
    checks.check(code == 1 and "REFUSED (FORGED)" in output and demo.mode() == "ESTOP",
                 "a forged RESUME (signed with another key) is refused as FORGED; the robot stays in ESTOP",
                 f"exit {code}, mode {demo.mode()}")


def reset_step(demo: GuardDemo, checks: Checklist, desk: GuardianDesk, processes: tuple[Any, ...]) -> None:
    """SAFE_STOP by a rogue publisher: RESET refused while it publishes; once it is gone, a signed RESET
    resumes without a jump; the same RESET replayed is refused."""
    key = load_private_key(desk.guardian.private_key)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    early = demo.guardian_command(signed_command(key, desk.guardian.guardian_id, desk.identity_number,
                                                 GuardianAction.RESET, "", "rogue node removed (it is not)"))
    print(f"    RESET: {'obeyed' if early.obeyed else 'not done'} ({early.refusal}): {early.detail}")
    state = demo.state()
    active = list(state.active_anomalies) if state is not None else []
    checks.check(early.accepted and not early.obeyed and "still active" in early.detail and state is not None
                 and state.latched and "rogue_hw_publisher" in active,
                 "a RESET while the cause is still present (the rogue publisher) is refused; the robot stays stopped",
                 f"mode {demo.mode()}; active: {', '.join(active) or 'none'}")
    accepted, message = demo.inject("clear", "{}")
    if not accepted:
        checks.check(False, f"the rogue publisher removed ({message})")
        return
    wait_for(lambda: bool(demo.raised("rogue_hw_publisher")) and not demo.raised_now("rogue_hw_publisher"), 15.0,
             "the rogue publisher's anomaly cleared", processes)
    before = demo.joint_positions(ARM_JOINTS)
    # The guardian tries again (a fresh command each time) until nothing that stops the robot stands any more.
    deadline = time.monotonic() + RESET_TRIES_S
    while True:
        msg = signed_command(key, desk.guardian.guardian_id, desk.identity_number, GuardianAction.RESET, "",
                             "rogue node removed, site checked")
        result = demo.guardian_command(msg)
        if result.obeyed or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    checks.wait(lambda: result.accepted and demo.mode() == "NORMAL" and (t := demo.truth()) is not None
                and t.actuation_mode_name == "NORMAL", 10.0,
                "a signed RESET after the cause is cleared: accepted, NORMAL, the hardware powered as it was",
                processes)
    time.sleep(1.0)
    after = demo.joint_positions(ARM_JOINTS)
    jump = max((abs(a - b) for a, b in zip(after or [], before or [], strict=False)), default=float("inf"))
    checks.check(before is not None and after is not None and jump < NO_JUMP_RAD,
                 f"no jump: the gate re-anchored to the measured posture (largest arm joint motion {jump:.3f} rad "
                 f"< {NO_JUMP_RAD} rad)")
    replay = demo.guardian_command(msg)
    checks.check(not replay.accepted and replay.refusal == "REPLAYED" and demo.mode() == "NORMAL",
                 "the same RESET replayed off the wire is refused (REPLAYED)",
                 f"{replay.refusal}: {replay.detail}")


def acknowledge_step(checks: Checklist, desk: GuardianDesk, monitor: Any, alerts: Callable[[], list[Any]]) -> None:
    """An officer acknowledges every open incident of the robot from the command line, once each."""
    open_ids = [i.fields.incident_id for i in _incidents_of(monitor, desk.identity_number)]
    codes = [run_cli(["dept", "ack", incident_id, "--key", str(desk.officer.private_key), "--guardian-id",
                      desk.officer.guardian_id, "--timeout", str(CLI_WAIT_S), "--reason",
                      "guardian on site, cause removed"], desk.env)[0]
             for incident_id in open_ids]
    checks.wait(lambda: bool(open_ids) and all(code == 0 for code in codes)
                and not any(i.fields.incident_id in open_ids for i in _incidents_of(monitor, desk.identity_number))
                and sum(1 for a in alerts() if a.kind.name == "INCIDENT" and not a.raised) >= len(open_ids), 15.0,
                f"the department acknowledged {len(open_ids)} incident(s) (signed by an officer): the robot reports "
                "them closed, the INCIDENT alerts cleared")
