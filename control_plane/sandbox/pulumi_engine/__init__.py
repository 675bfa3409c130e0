"""Local stand-in for the Pulumi CLI, used by the sandbox in place of the real binary.

It runs the real Pulumi program under Pulumi's mock runtime. The Elastic Beanstalk
application and environment and the S3 bucket are created in the sandbox's AWS APIs, every
other resource is only recorded in state, and the state uses Pulumi's DIY S3 backend
layout. The engine rejects every command unless AWS_ENDPOINT_URL points to a loopback address.
Entry point: `bin/pulumi`.
"""
