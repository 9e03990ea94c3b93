"""Safety: the modes a robot can be in, its operating envelope, and the logic that moves it between modes.

* :mod:`.modes` — the one place that names the safety modes (BOOT, NORMAL, REDUCED, SAFE_STOP,
  POWER_DOWN, ESTOP) with their numbers, stop categories and what each allows.
* :mod:`.envelope` — the operating envelope parsed strictly from YAML into immutable values;
  :mod:`.robot_models` the joints and vendor facts of each robot model; :mod:`.g1_envelope` writes the
  G1's envelope from its MuJoCo model and checks an envelope against it.
* :mod:`.envelope_signature` — the department's detached Ed25519 signature on an envelope file and
  :func:`~.envelope_signature.load_signed_envelope`, which refuses unsigned, altered or expired files.
* :mod:`.envelope_checks` — clamp-or-refuse checks of joint commands, base velocity, geofence, service
  hours and tasks for the command gate.
* :mod:`.response_policy` — anomaly severities and the supervisor's responses and timing rules.
* :mod:`.supervisor` — the latched state machine of the safety modes.
* :mod:`.command_gate` — the command gate: forwards, clamps or refuses the controllers' commands.
* :mod:`.anomaly_detectors` — the detectors of abnormal behaviour (numpy); :mod:`.intrusion_check` who
  publishes on the hardware and gate topics.
* :mod:`.rest_lowering` — POWER_DOWN's lowering to a rest posture, then DAMPING, then POWER_OFF.
* :mod:`.guard_core` — gate, detectors, supervisor and lowering wired together: what the guard node runs.
* :mod:`.dev_envelope` — a signed site copy of an envelope for the demo and tests (development only).

Pure logic that thin nodes wrap; no rclpy.
"""
