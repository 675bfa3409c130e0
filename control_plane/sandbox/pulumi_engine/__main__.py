"""`python -m control_plane.sandbox.pulumi_engine <pulumi arguments>`."""

import os
import sys
from importlib.metadata import PackageNotFoundError

try:
    from .cli import main
except (ImportError, PackageNotFoundError) as error:
    print(
        f"error: the sandbox Pulumi engine cannot start with {sys.executable}: {error}. Run it "
        "with the project's Python environment (pulumi, pulumi-aws, boto3 and cryptography "
        "installed), for example by setting CONTROL_PLANE_PYTHON to that environment's python.",
        file=sys.stderr,
    )
    sys.exit(255)

exit_code = main()
sys.stdout.flush()
sys.stderr.flush()
# The Pulumi SDK leaves an asyncio event loop on each worker thread that ran a resource
# registration. Garbage-collecting them at interpreter exit prints tracebacks to stderr,
# so the process ends here, after its output is flushed, without that teardown.
os._exit(exit_code)
