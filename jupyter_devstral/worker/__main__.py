"""``python -m jupyter_devstral.worker --model PATH.gguf``: run the model worker (see .server)."""

import sys

from .server import main

sys.exit(main())
