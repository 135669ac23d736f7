"""Capture the tracebacks real clients print against the loopback API (run once, by hand).

``python tests/data/pasted/capture.py`` runs each client generation of ``tests/clients.py`` with
each scenario below, without replicate-explain, and writes what the program printed on stderr
to ``tests/data/pasted/<version>-<scenario>.txt``; the same code run by IPython in colour
(``ipython --colors=linux -c``) goes to ``<version>-<scenario>-ipython.txt``.
``tests/test_pasted.py`` reads those texts.
The only token in them is the canary (or the loopback's billing, credit or throttled token).
``--only SCENARIO`` captures one scenario.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from clients import (  # noqa: E402
    CANARY,
    MODEL_REF,
    NO_BILLING_TOKEN,
    NO_CREDIT_TOKEN,
    REFUSALS,
    THROTTLED_TOKEN,
    VALID_TOKEN,
    client_env,
    run_program,
)

from replicate_explain._loopback import LoopbackAPI  # noqa: E402

VERSIONS = ("0.11.0", "0.15.3", "1.0.7", "2.0.0b4")

PROGRAM = f"""
import os
import replicate

token = os.environ.pop("PASTED_CODE_TOKEN", None)
if token is None:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
elif hasattr(replicate, "Replicate"):
    replicate.Replicate(bearer_token=token).run({MODEL_REF!r}, input={{"text": "hi"}})
else:
    replicate.Client(api_token=token).run({MODEL_REF!r}, input={{"text": "hi"}})
"""

#: scenario -> (REPLICATE_API_TOKEN, token passed in code, point the client at a closed port)
SCENARIOS: dict[str, tuple[str | None, str | None, bool]] = {
    "unset": (None, None, False),
    "rejected": (CANARY, None, False),
    "newline-in-code": (None, CANARY + "\n", False),
    "quoted-in-code": (None, f'"{CANARY}"', False),
    "bearer-in-code": (None, f"Bearer {CANARY}", False),
    "non-ascii-in-code": (None, CANARY + "\u200b", False),
    "billing": (NO_BILLING_TOKEN, None, False),
    "no-credit": (NO_CREDIT_TOKEN, None, False),
    "throttled": (THROTTLED_TOKEN, None, False),
    "network": (CANARY, None, True),
}


def main() -> int:
    """``--only NAME``: capture that scenario alone (the others' files are left as they are)."""
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with LoopbackAPI(tokens={VALID_TOKEN}, refusals=REFUSALS) as api:
        for version in VERSIONS:
            for name, (variable, in_code, closed) in SCENARIOS.items():
                if only is not None and name != only:
                    continue
                extra = {"PASTED_CODE_TOKEN": in_code} if in_code is not None else {}
                if closed:
                    extra.update(REPLICATE_BASE_URL="http://127.0.0.1:9", REPLICATE_API_BASE_URL="http://127.0.0.1:9")
                    if version.startswith("2."):
                        extra["REPLICATE_BASE_URL"] = "http://127.0.0.1:9/v1"
                if "--ipython-only" not in sys.argv:
                    done = run_program(PROGRAM, version, api, variable, extra, timeout=120)
                    (HERE / f"{version}-{name}.txt").write_text(done.stderr, encoding="utf-8")
                    print(version, name, done.returncode, done.stderr.strip().splitlines()[-1:] or "")
                env = client_env(version, api, variable, extra)
                env.pop("NO_COLOR", None)
                shown = subprocess.run(
                    [sys.executable, "-m", "IPython", "--colors=linux", "--no-banner", "-c", PROGRAM],
                    env=env,
                    capture_output=True,
                    encoding="utf-8",
                    errors="replace",
                    timeout=120,
                    check=False,
                )
                (HERE / f"{version}-{name}-ipython.txt").write_text(shown.stdout, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
