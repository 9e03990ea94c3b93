"""Incidents: what the robot tells the department when it stops on its own or is e-stopped.

Every automatic SAFE_STOP or POWER_DOWN and every e-stop opens a signed incident report (what
happened, when, which anomalies, scope, measures taken, mode before and after, guardian on duty and
contact), kept on disk and re-published until the department acknowledges it with a signed guardian
ACKNOWLEDGE. Pure logic; no rclpy.

* :mod:`.incident_report` — the report's fields (:class:`IncidentFields`), the mapping the robot signs
  (equal to ``message_fields`` of the IncidentReport message), :func:`sign_incident` on the robot and
  :func:`verify_incident` at the department (certificate chain, signature, identity).
* :mod:`.incident_ledger` — the robot's :class:`IncidentLedger`: which safety transitions open an
  incident (one per stop episode), one JSON file per unacknowledged incident, exactly-once
  acknowledgement, and the re-publication schedule.
"""
