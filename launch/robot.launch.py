"""Robot-side guard stack of one robot employee (the nodes of `ftrobot up robot`).

The guard (command gate, anomaly detectors, safety supervisor) runs in its own process, as do the
heartbeat and the recorder here (launch_ros starts one process per node).

    ros2 launch ftrobot_guard robot.launch.py params_file:=/etc/ftrobot/robot.yaml \
        recorder_params_file:=/etc/ftrobot/recorder.yaml namespace:=/futian/robot01

Every node gets both params files (`--params-file`), each reading its own section. The heartbeat's
config digest covers exactly these files, read from its own ROS arguments: parameters here are
params files only, never a list (launch_ros would join a list of substitutions into one string).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    params_file = LaunchConfiguration("params_file")
    recorder_params_file = LaunchConfiguration("recorder_params_file")
    namespace = LaunchConfiguration("namespace")
    common = {"namespace": namespace, "output": "screen", "emulate_tty": True}
    parameters = [params_file, recorder_params_file]
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("ftrobot_guard"), "config", "robot.yaml"]),
            description="ROS 2 params file with the robot's identity, keys and black box settings",
        ),
        DeclareLaunchArgument(
            "recorder_params_file",
            default_value=PathJoinSubstitution([FindPackageShare("ftrobot_guard"), "config", "recorder.yaml"]),
            description="ROS 2 params file of the black-box recorder",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="the robot's namespace"),
        Node(package="ftrobot_guard", executable="guard", name="guard", parameters=parameters, **common),
        Node(package="ftrobot_guard", executable="heartbeat", name="heartbeat", parameters=parameters, **common),
        Node(package="ftrobot_guard", executable="recorder", name="recorder", parameters=parameters, **common),
    ])
