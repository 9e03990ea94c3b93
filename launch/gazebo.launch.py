"""A humanoid in Gazebo (gz-sim) behind the hardware contract's topics, via ros_gz_bridge.

    ros2 launch ftrobot_guard gazebo.launch.py world:=/path/to/g1_world.sdf namespace:=/futian/robot01

Needs ros_gz_sim and ros_gz_bridge (apt: ros-$ROS_DISTRO-ros-gz). The bridge maps joint states, IMU,
odometry, battery, /clock and the commands (config/gz_bridge.yaml); the guard stack then runs with
use_sim_time:=true. Gazebo has no hw/set_actuation_mode service or guard/alive watchdog: those belong
to the robot's driver (see docs/simulator.md). Not exercised by this repository's tests.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, TextSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    world = LaunchConfiguration("world")
    namespace = LaunchConfiguration("namespace")
    bridge_config = LaunchConfiguration("bridge_config")
    return LaunchDescription([
        DeclareLaunchArgument("world", description="Gazebo world SDF with the humanoid model (named g1)"),
        DeclareLaunchArgument("namespace", default_value="", description="the robot's namespace"),
        DeclareLaunchArgument(
            "bridge_config",
            default_value=PathJoinSubstitution([FindPackageShare("ftrobot_guard"), "config", "gz_bridge.yaml"]),
            description="ros_gz_bridge YAML mapping Gazebo topics onto the hardware contract",
        ),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
            ),
            launch_arguments={"gz_args": [TextSubstitution(text="-r "), world]}.items(),
        ),
        Node(
            package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge", namespace=namespace,
            parameters=[{"config_file": bridge_config, "use_sim_time": True}], output="screen",
        ),
    ])
