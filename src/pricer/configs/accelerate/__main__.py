"""Print the path of a shipped accelerate config: python -m pricer.configs.accelerate ddp|fsdp-qlora."""

import sys

from pricer.configs.accelerate import CONFIGS, config_path
from pricer.errors import PricerError

if len(sys.argv) != 2:
    print(f"usage: python -m pricer.configs.accelerate {'|'.join(CONFIGS)}", file=sys.stderr)
    sys.exit(2)
try:
    print(config_path(sys.argv[1]))
except PricerError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
