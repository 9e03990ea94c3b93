"""The simulated Unitree G1 (MuJoCo) behind the hardware contract (the node of `ftrobot up sim`).

    ros2 launch ftrobot_guard sim.launch.py namespace:=/futian/robot01
    ros2 launch ftrobot_guard robot.launch.py namespace:=/futian/robot01 params_file:=... recorder_params_file:=...

The two together are the whole simulated robot: the simulator offers the hardware contract's topics
and services in the robot's namespace, the guard stack supervises them. Lock-step mode (publishes
/clock; run the guard with use_sim_time) is chosen in the params file (`lockstep: true`), as are
all other settings (docs/simulator.md). The `humanoid_sim` executable spins the node on a single
thread, as `ftrobot up sim` does.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("ftrobot_guard"), "config", "sim.yaml"]),
            description="ROS 2 params file of the simulator (model, gains, rates, guard/alive watchdog)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="the robot's namespace"),
        Node(
            package="ftrobot_guard", executable="humanoid_sim", name="humanoid_sim", namespace=namespace,
            parameters=[params_file], output="screen", emulate_tty=True,
        ),
    ])
