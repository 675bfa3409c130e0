"""Elastic Beanstalk simulator for the sandbox: the Query API, lifecycle and app host."""

from control_plane.sandbox.eb.simulator import ElasticBeanstalkSimulator

__all__ = ["ElasticBeanstalkSimulator"]
