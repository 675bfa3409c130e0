"""Deployment control plane for Elastic Beanstalk apps whose infrastructure is a Pulumi program."""
