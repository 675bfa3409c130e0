"""Local stand-in for AWS that runs the synthesized state machine without an AWS account."""
