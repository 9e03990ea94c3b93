"""Department-side cost of authenticating heartbeats (pure logic, no DDS).

Measures, for a realistic heartbeat (2 watched topics, ~460-byte DER certificate):
canonical encoding, one Ed25519 verification of the fields, and the monitor's full steady-state
``FleetMonitor.on_heartbeat`` (certificate chain cached), then the share of one core that
1000 robots at 1 Hz would take.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.certificates import certificate_der, create_department_ca, issue_robot_certificate
from ftrobot_guard.department.fleet_monitor import FleetMonitor, heartbeat_view_from_fields
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, canonical_bytes, sign_fields, verify_fields

N = 3000
ROBOTS = 1000


def per_call_us(fn: Callable[[int], Any], n: int = N, repeats: int = 5) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return min(samples), samples


def main() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca = create_department_ca("Futian Data Bureau", ca_key, 30, now=now - dt.timedelta(hours=1))
    key = ed25519.Ed25519PrivateKey.generate()
    cert = certificate_der(
        issue_robot_certificate(ca, ca_key, key.public_key(), make_identity_number("440304", 2026, 123), "Xiao Fu",
                                "Futian Data Bureau", now - dt.timedelta(hours=1), now + dt.timedelta(days=1))
    )

    def fields(seq: int) -> dict[str, Any]:
        return {
            "header": {"stamp": {"sec": 1_800_000_000 + seq, "nanosec": 0}, "frame_id": ""},
            "format_version": 1, "identity_number": "440304-RB-2026-000123-8", "robot_name": "Xiao Fu",
            "department": "Futian Data Bureau", "boot_id": "0f" * 16, "sequence": seq, "uptime": float(seq),
            "safety_mode": 1, "safety_mode_name": "NORMAL",
            "watched_topics": [{"topic": t, "ever_received": True, "age": 0.01, "max_age": 0.2, "healthy": True}
                               for t in ("/r1/joint_states", "/r1/imu")],
            "software_digest": "ab" * 32, "config_digest": "cd" * 32, "guardian_on_duty": "G-0001",
            "log_checkpoint_sequence": seq, "log_segment_id": "seg-0001", "log_chain_head": "ef" * 32,
            "certificate": cert,
        }

    views = []
    for seq in range(1, N * 5 + 2):
        f = fields(seq)
        views.append(heartbeat_view_from_fields(f, sign_fields(key, HEARTBEAT_DOMAIN, f), "gid"))
    sample = views[0]
    public = key.public_key()
    message = canonical_bytes(HEARTBEAT_DOMAIN, sample.signed_fields)

    encode_us, _ = per_call_us(lambda i: canonical_bytes(HEARTBEAT_DOMAIN, sample.signed_fields))
    raw_verify_us, _ = per_call_us(lambda i: public.verify(sample.signature, message))
    verify_us, _ = per_call_us(lambda i: verify_fields(public, HEARTBEAT_DOMAIN, sample.signed_fields, sample.signature))

    monitor = FleetMonitor([ca], clock=lambda: now)
    monitor.on_heartbeat(views[0], 0.0)
    counter = iter(range(1, len(views)))

    def step(_: int) -> None:
        i = next(counter)
        monitor.on_heartbeat(views[i], float(i))

    monitor_us, samples = per_call_us(step, n=N, repeats=5)
    share = monitor_us * ROBOTS / 1e6
    print(f"message bytes:               {len(message)}")
    print(f"canonical encoding:          {encode_us:8.1f} us")
    print(f"Ed25519 verify (raw):        {raw_verify_us:8.1f} us")
    print(f"verify_fields:               {verify_us:8.1f} us")
    print(f"FleetMonitor.on_heartbeat:   {monitor_us:8.1f} us (runs: {', '.join(f'{s:.1f}' for s in samples)})")
    print(f"{ROBOTS} robots at 1 Hz:          {share * 100:8.1f} % of one core")
    distro = os.environ.get("ROS_DISTRO", "none")
    for figure, value, unit in (
        ("canonical_encoding_us", encode_us, "us"),
        ("verify_fields_us", verify_us, "us"),
        ("monitor_on_heartbeat_us", monitor_us, "us"),
        ("core_share_1000_robots_1hz", share * 100, "%"),
    ):
        print(json.dumps({"bench": "heartbeat_verify", "figure": figure, "value": round(value, 2), "unit": unit,
                          "n": N, "distro": distro}))


if __name__ == "__main__":
    main()
