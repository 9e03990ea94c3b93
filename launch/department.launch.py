"""The supervising department's monitor (the node of `ftrobot up department`).

    ros2 launch ftrobot_guard department.launch.py params_file:=/etc/ftrobot/department.yaml
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("ftrobot_guard"), "config", "department.yaml"]),
            description="ROS 2 params file with the trusted department CA certificates",
        ),
        Node(
            package="ftrobot_guard", executable="department_monitor", name="department_monitor",
            parameters=[params_file], output="screen", emulate_tty=True,
        ),
    ])
