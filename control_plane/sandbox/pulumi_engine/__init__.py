"""Local stand-in for the Pulumi CLI, used by the sandbox in place of the real binary.

It runs the real Pulumi program under Pulumi's mock runtime. The Elastic Beanstalk
application and environment and the S3 bucket are created in the sandbox's AWS APIs, every
other resource is only recorded in state, and the state uses Pulumi's DIY S3 backend
layout. The engine rejects every command unless AWS_ENDPOINT_URL points to a loopback address.
`preview --json` prints the CLI's JSON document (see `digest`), and
CONTROL_PLANE_ENGINE_SIMULATE switches on AWS behaviours that the sandbox cannot produce on
its own, such as expired credentials (see `simulation`). Entry point: `bin/pulumi`.
"""
