"""Local stand-in for the Pulumi CLI, used by the sandbox in place of the real binary.

It runs the real Pulumi program under Pulumi's mock runtime, creates the Elastic Beanstalk
application and environment and the S3 bucket in the sandbox's AWS APIs, records every
other resource in state, and keeps the state in Pulumi's DIY S3 backend layout. It refuses
to run unless AWS_ENDPOINT_URL points to a loopback address. Entry point: `bin/pulumi`.
"""
