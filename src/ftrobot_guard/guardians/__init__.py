"""Guardians (监护人): who may command a robot employee, and how each command is authenticated.

A guardian's command (``ftrobot_msgs/GuardianCommand``) is signed with the guardian's Ed25519 key,
bound to one robot's identity number, stamped and carrying a nonce. Stops are never refused: the guard
obeys a stop first and authenticates it after. Pure logic; no rclpy. Modules:

* :mod:`.guardian_commands`: the actions (:class:`~.guardian_commands.GuardianAction`), which are stops,
  the signed fields of a command and how to sign them;
* :mod:`.command_authentication`: :class:`~.command_authentication.GuardianCommandVerifier`, which turns a
  command into an accepted action or a refusal with its kind and reason, and is the only maker of the
  :class:`~.command_authentication.AuthenticatedReset` that opens a latched stop;
* :mod:`.role_policy`: which certificate role is authorized for which action;
* :mod:`.guardian_registry`: the guardians registered on this robot (a directory of certificates);
* :mod:`.revocation_list`: the department-signed list of revoked guardian certificates, followed on disk;
* :mod:`.replay_memory`: the nonces already accepted, kept across a restart;
* :mod:`.duty_roster`: the guardian on duty now, and the handover of duty;
* :mod:`.guardian_parameters`: the guard's ``guardian_roles`` and ``guardian_contacts`` parameters, parsed.
"""
