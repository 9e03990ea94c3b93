"""The `ftrobot` command line."""
